"""Directory groups → authorities (IDENTITY.md §4): normalisation, well-known and implied roles."""

from __future__ import annotations

import pytest

from sync_endpoint.core.roles import (
    anonymous_authorities,
    authorities_from_groups,
    group_authority,
)

PREFIX = "default_prefix"
LDAP_DEFAULTS = ("AUTH_LDAP", "USER_IS_REGISTERED", "ROLE_USER")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Every row of the IDENTITY §4.1 examples table.
        ("default_prefix synchronize_tables", "ROLE_SYNCHRONIZE_TABLES"),
        ("DEFAULT_PREFIX Site Admins", "ROLE_SITE_ACCESS_ADMIN"),
        ("default_prefix region-north", "GROUP_REGION_NORTH"),
        ("default_prefix Nurses (Zone 2)", "GROUP_NURSES_ZONE_2_"),
        ("default_prefix_region", None),
        ("other_prefix region", None),
        ("staff", None),
        # §2.2: case-insensitive and punctuation-tolerant after the prefix.
        ("default_prefix Site-Admins", "ROLE_SITE_ACCESS_ADMIN"),
        ("Default_Prefix data viewers", "ROLE_DATA_VIEWER"),
        ("default_prefix a.b/c\td", "GROUP_A_B_C_D"),
        ("default_prefix", None),
    ],
)
def test_normalisation_examples(raw: str, expected: str | None) -> None:
    """Each example of IDENTITY §4.1 normalises to the listed authority or is discarded."""
    assert group_authority(raw, PREFIX) == expected


@pytest.mark.parametrize(
    ("group", "role"),
    [
        ("site_admins", "ROLE_SITE_ACCESS_ADMIN"),
        ("administer_tables", "ROLE_ADMINISTER_TABLES"),
        ("super_user_tables", "ROLE_SUPER_USER_TABLES"),
        ("synchronize_tables", "ROLE_SYNCHRONIZE_TABLES"),
        ("form_managers", "ROLE_DATA_OWNER"),
        ("data_viewers", "ROLE_DATA_VIEWER"),
        ("data_collectors", "ROLE_DATA_COLLECTOR"),
    ],
)
def test_well_known_groups_become_roles(group: str, role: str) -> None:
    """The seven well-known groups are emitted as their role, never as GROUP_* (§4.2)."""
    assert group_authority(f"{PREFIX} {group}", PREFIX) == role


def test_empty_prefix_accepts_every_group() -> None:
    """With an empty prefix (DHIS2) every group is accepted."""
    assert group_authority("staff", "") == "GROUP_STAFF"
    assert group_authority("Data Viewers", "") == "ROLE_DATA_VIEWER"


AUTHORITY_SETS = {
    "site_admins": [
        "AUTH_LDAP", "ROLE_ADMINISTER_TABLES", "ROLE_DATA_COLLECTOR", "ROLE_DATA_OWNER",
        "ROLE_DATA_VIEWER", "ROLE_SITE_ACCESS_ADMIN", "ROLE_SUPER_USER_TABLES",
        "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_REGISTERED",
    ],
    "administer_tables": [
        "AUTH_LDAP", "ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES",
        "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_REGISTERED",
    ],
    "super_user_tables": [
        "AUTH_LDAP", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER",
        "USER_IS_REGISTERED",
    ],
    "synchronize_tables": [
        "AUTH_LDAP", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_REGISTERED",
    ],
    "form_managers": [
        "AUTH_LDAP", "ROLE_DATA_OWNER", "ROLE_DATA_VIEWER", "ROLE_USER", "USER_IS_REGISTERED",
    ],
    "data_viewers": ["AUTH_LDAP", "ROLE_DATA_VIEWER", "ROLE_USER", "USER_IS_REGISTERED"],
    "data_collectors": ["AUTH_LDAP", "ROLE_DATA_COLLECTOR", "ROLE_USER", "USER_IS_REGISTERED"],
    "region-north": ["AUTH_LDAP", "GROUP_REGION_NORTH", "ROLE_USER", "USER_IS_REGISTERED"],
}  # fmt: skip


@pytest.mark.parametrize(("group", "expected"), sorted(AUTHORITY_SETS.items()))
def test_authority_sets_of_bootstrap_groups(group: str, expected: list[str]) -> None:
    """A member of one group holds exactly the authorities of IDENTITY §4.4 (LDAP mode)."""
    authorities = authorities_from_groups([f"{PREFIX} {group}"], PREFIX, LDAP_DEFAULTS)
    assert sorted(authorities) == expected


def test_no_prefixed_group_gives_no_authority() -> None:
    """Without an accepted group the set is empty: not even ROLE_USER (§4.1 "Keep")."""
    assert authorities_from_groups(["staff", "default_prefix_x"], PREFIX, LDAP_DEFAULTS) == set()
    assert authorities_from_groups([], PREFIX, LDAP_DEFAULTS) == frozenset()


def test_several_groups_are_united() -> None:
    """Authorities of several groups are united, implied roles included."""
    authorities = authorities_from_groups(
        ["default_prefix data_collectors", "default_prefix super_user_tables", "staff"],
        PREFIX,
        LDAP_DEFAULTS,
    )
    assert sorted(authorities) == [
        "AUTH_LDAP",
        "ROLE_DATA_COLLECTOR",
        "ROLE_SUPER_USER_TABLES",
        "ROLE_SYNCHRONIZE_TABLES",
        "ROLE_USER",
        "USER_IS_REGISTERED",
    ]


def test_dhis2_defaults() -> None:
    """DHIS2 mode: empty prefix and only AUTH_DHIS2 + ROLE_USER as defaults."""
    authorities = authorities_from_groups(["Synchronize Tables"], "", ("AUTH_DHIS2", "ROLE_USER"))
    assert sorted(authorities) == ["AUTH_DHIS2", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER"]


def test_anonymous_authorities() -> None:
    """Anonymous callers are USER_IS_ANONYMOUS, plus ROLE_USER and sync when enabled (§5.18)."""
    assert anonymous_authorities(False) == {"USER_IS_ANONYMOUS"}
    assert anonymous_authorities(True) == {
        "USER_IS_ANONYMOUS",
        "ROLE_USER",
        "ROLE_SYNCHRONIZE_TABLES",
    }
