"""The Active Directory backend (IDENTITY.md §8, §13.4; checklist 23, 29–32).

No Active Directory can run here, and slapd cannot stand in for one: it has no UPN binds, no
`memberOf` in its default schema and no LDAP_MATCHING_RULE_IN_CHAIN. So the name, UPN and
filter logic is unit-tested, and the directory operations run against `FakeAdConnection`, a
small in-memory stand-in for an ldap3 connection that answers exactly the searches the backend
sends (by matching their filters), with the in-chain rule supported, refused or silently
ignored. The connection machinery itself (binds, pool, timeouts, paging) is the LDAP backend's
and is tested against the real slapd in test_ldap.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from sync_endpoint.identity.activedirectory import (
    ALL_USERS,
    IN_CHAIN,
    ActiveDirectoryIdentityProvider,
    common_name,
    in_chain_filter,
    user_filter,
    user_principal_name,
)
from sync_endpoint.settings import Settings

T = TypeVar("T")
BASE = "DC=corp,DC=example"
SYNC = f"CN=default_prefix synchronize_tables,OU=Groups,{BASE}"
REGION = f"CN=default_prefix region-north,OU=Groups,{BASE}"
STAFF = f"CN=Field Staff,OU=Groups,{BASE}"
ADMINS = f"CN=default_prefix site_admins,OU=Groups,{BASE}"
LOOP_A = f"CN=Loop A,OU=Groups,{BASE}"
LOOP_B = f"CN=Loop B,OU=Groups,{BASE}"
ALICE_DN = f"CN=Alice Doe,OU=Staff,{BASE}"
BOB_DN = f"CN=Bob Roe,OU=Staff,{BASE}"
CAROL_DN = f"CN=Carol Poe,OU=Staff,{BASE}"
NOSAM_DN = f"CN=No Sam,OU=Staff,{BASE}"
ALICE_ROLES = [
    "AUTH_ACTIVE_DIRECTORY", "GROUP_REGION_NORTH", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER",
    "USER_IS_REGISTERED",
]  # fmt: skip


def tree() -> dict[str, dict[str, list[str]]]:
    """IDENTITY §13.4: alice in synchronize_tables and Field Staff; Field Staff in region-north."""
    return {
        SYNC: {"objectclass": ["group"], "memberof": []},
        REGION: {"objectclass": ["group"], "memberof": []},
        STAFF: {"objectclass": ["group"], "memberof": [REGION]},
        ADMINS: {"objectclass": ["group"], "memberof": []},
        LOOP_A: {"objectclass": ["group"], "memberof": [LOOP_B]},  # a nesting cycle
        LOOP_B: {"objectclass": ["group"], "memberof": [LOOP_A, SYNC]},
        ALICE_DN: {
            "objectclass": ["user", "organizationalPerson"],
            "samaccountname": ["alice"],
            "userprincipalname": ["alice@corp.example"],
            "name": ["Alice Doe"],
            "memberof": [SYNC, STAFF],
            "streetaddress": [REGION],
        },
        BOB_DN: {
            "objectclass": ["user", "organizationalPerson"],
            "samaccountname": ["bob"],
            "userprincipalname": ["bob@corp.example"],
            "name": ["Bob Roe"],
            "memberof": [ADMINS, LOOP_A],
            "streetaddress": ["12 High Street"],  # not a DN: no default group
        },
        CAROL_DN: {
            "objectclass": ["user", "organizationalPerson"],
            "samaccountname": ["carol"],
            "userprincipalname": ["carol@corp.example"],
            "name": ["Carol Poe"],
            "memberof": [f"CN=Everyone,OU=Groups,{BASE}"],
            "streetaddress": [ADMINS],  # a group she does not hold
        },
        NOSAM_DN: {
            "objectclass": ["user", "organizationalPerson"],
            "userprincipalname": ["nosam@corp.example"],
            "name": ["No Sam"],
            "memberof": [SYNC],
        },
    }


class FakeAdConnection:
    """Answers the backend's searches like ldap3 (result dict, response list)."""

    def __init__(self, entries: dict[str, dict[str, list[str]]], in_chain: str) -> None:
        self.entries = entries
        self.in_chain = in_chain  # "supported", "refused" or "ignored"
        self.searches: list[str] = []
        self.result: dict[str, Any] = {}
        self.response: list[dict[str, Any]] = []

    def _answer(self, dns: list[str], code: int = 0) -> bool:
        self.result = {"result": code, "description": "success" if code == 0 else "error"}
        self.response = [
            {"type": "searchResEntry", "dn": dn, "attributes": self.entries[dn]} for dn in dns
        ]
        self.response.append({"type": "searchResRef", "uri": ["ldap://ForestDnsZones/"]})
        return bool(dns)

    def _closure(self, dn: str) -> list[str]:
        seen: list[str] = []
        queue = list(self.entries[dn]["memberof"])
        while queue:
            group = queue.pop()
            if group not in seen and group in self.entries:
                seen.append(group)
                queue += self.entries[group]["memberof"]
        return seen

    def search(self, base: str, search_filter: str, scope: str, **_: Any) -> bool:
        self.searches.append(search_filter)
        if search_filter == "(objectClass=*)":
            return self._answer([base]) if base in self.entries else self._answer([], 32)
        if match := re.fullmatch(
            r"\(&\(objectClass=user\)\(userPrincipalName=(.*)\)\)", search_filter
        ):
            upn = match.group(1).lower()  # AD compares UPNs without case
            dns = [
                d
                for d, a in self.entries.items()
                if upn in (v.lower() for v in a.get("userprincipalname", []))
            ]
            return self._answer(dns)
        if f"member:{IN_CHAIN}:=" in search_filter:
            if self.in_chain == "refused":
                return self._answer([], 53)
            if self.in_chain == "ignored":
                return self._answer([])
            user = search_filter.split(":=", 1)[1][:-2].replace("\\2c", ",")
            return self._answer(self._closure(user))
        if search_filter == "(objectClass=group)":
            return self._answer([d for d, a in self.entries.items() if "group" in a["objectclass"]])
        if search_filter == ALL_USERS:
            return self._answer([d for d, a in self.entries.items() if "userprincipalname" in a])
        raise AssertionError(f"unexpected search {search_filter}")


class FakeDirectory:
    """Stands in for identity.ldap.Directory: records binds, hands out fake connections."""

    def __init__(self, in_chain: str = "supported") -> None:
        self.passwords = {"alice@corp.example": "s3cret", "bob@corp.example": "bob-pw",
                          "carol@corp.example": "carol-pw", "nosam@corp.example": "n-pw",
                          "ghost@corp.example": "g-pw"}  # fmt: skip
        self.binds: list[str] = []
        self.connection = FakeAdConnection(tree(), in_chain)

    def run_as_user(self, user: str, password: str, op: Callable[[Any], T]) -> T | None:
        self.binds.append(user)
        if not password or self.passwords.get(user.lower()) != password:
            return None
        return op(self.connection)

    async def lookup(self, op: Callable[[Any], T]) -> T:
        self.binds.append("svc-odk@corp.example")
        return op(self.connection)

    async def close(self) -> None:
        return None


def provider(in_chain: str = "supported") -> tuple[ActiveDirectoryIdentityProvider, FakeDirectory]:
    directory = FakeDirectory(in_chain)
    ad = ActiveDirectoryIdentityProvider(
        directory,  # type: ignore[arg-type]
        domain="corp.example",
        base_dn=BASE,
        prefix="default_prefix",
    )
    return ad, directory


# -- names and filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "upn"),
    [
        ("alice", "alice@corp.example"),
        ("alice@corp.example", "alice@corp.example"),
        ("Alice@CORP.EXAMPLE", "Alice@CORP.EXAMPLE"),  # not suffixed twice (checklist 29)
        ("alice@other.example", "alice@other.example@corp.example"),
        ("alicecorp.example", "alicecorp.example@corp.example"),
    ],
)
def test_user_principal_name(login: str, upn: str) -> None:
    """The login is suffixed with @<domain> unless it already ends with it."""
    assert user_principal_name(login, "CORP.example") == upn


def test_filters_escape_their_values() -> None:
    """The UPN and the user DN are escaped as filter values; nothing can widen the search."""
    assert user_filter("a*)(cn=*@corp.example") == (
        "(&(objectClass=user)(userPrincipalName=a\\2a\\29\\28cn=\\2a@corp.example))"
    )
    assert in_chain_filter("CN=Doe\\, John (x),DC=corp") == (
        f"(&(objectClass=group)(member:{IN_CHAIN}:=CN=Doe\\5c, John \\28x\\29,DC=corp))"
    )


@pytest.mark.parametrize(
    ("dn", "name"),
    [
        (SYNC, "default_prefix synchronize_tables"),
        ("CN=default_prefix region\\, north,OU=G,DC=x", "default_prefix region, north"),
        ("CN=default_prefix Nurses \\28Zone 2\\29,DC=x", "default_prefix Nurses (Zone 2)"),
        ("CN=default_prefix Caf\\C3\\A9,DC=x", "default_prefix Café"),
        ("12 High Street", None),
    ],
)
def test_common_name(dn: str, name: str | None) -> None:
    """A group's name is its DN's left-most RDN value, unescaped (checklist 30)."""
    assert common_name(dn) == name


def test_settings_derive_url_and_base() -> None:
    """SYNC_AD_URL and SYNC_AD_BASE_DN default from the domain (DEPLOYMENT §5.1)."""
    settings = Settings(identity_backend="activedirectory", ad_domain="Corp.Example.org")
    assert settings.effective_ad_url == "ldaps://corp.example.org"
    assert settings.effective_ad_base_dn == "DC=corp,DC=example,DC=org"
    ad = ActiveDirectoryIdentityProvider.from_settings(settings)
    assert (ad.domain, ad.base_dn) == ("corp.example.org", "DC=corp,DC=example,DC=org")
    assert ad.directory.url == "ldaps://corp.example.org"


# -- login -------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_chain", ["supported", "refused", "ignored"])
async def test_alice_nested_groups(in_chain: str) -> None:
    """IDENTITY §13.4: nested region-north is found with or without the in-chain rule."""
    ad, directory = provider(in_chain)
    principal = await ad.authenticate("alice", "s3cret")
    assert principal is not None
    assert sorted(principal.authorities) == ALICE_ROLES
    assert principal.default_group == "GROUP_REGION_NORTH"  # streetAddress, held (checklist 31)
    assert directory.binds == ["alice@corp.example"]  # the user's own bind (checklist 29)


@pytest.mark.parametrize("login", ["alice", "alice@corp.example", "ALICE@corp.example"])
async def test_user_id_is_the_account_name(login: str) -> None:
    """However alice types her name, her id is username:alice, as in usersInfo (checklist 23)."""
    ad, _ = provider()
    principal = await ad.authenticate(login, "s3cret")
    assert principal is not None
    assert (principal.login, principal.user_id) == ("alice", "username:alice")
    listed = {u.user_id: u for u in await ad.list_users()}
    assert listed["username:alice"].roles == tuple(sorted(principal.authorities))


async def test_cycles_and_site_admins() -> None:
    """Nesting cycles terminate; site_admins expands to every role; a street address is no DN."""
    ad, _ = provider("refused")
    principal = await ad.authenticate("bob", "bob-pw")
    assert principal is not None
    assert "ROLE_SITE_ACCESS_ADMIN" in principal.authorities
    assert "ROLE_DATA_COLLECTOR" in principal.authorities
    assert "AUTH_ACTIVE_DIRECTORY" in principal.authorities
    assert principal.default_group is None


async def test_no_prefixed_group_and_unheld_default() -> None:
    """carol: no accepted group gives no authority, and her streetAddress group is not held."""
    ad, _ = provider()
    principal = await ad.authenticate("carol", "carol-pw")
    assert principal is not None
    assert principal.authorities == frozenset()
    assert principal.default_group is None


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice", "wrong"), ("alice", ""), ("nobody", "x"), ("ghost", "g-pw"), ("a\x00", "s3cret")],
)
async def test_rejected(login: str, password: str) -> None:
    """Wrong or empty passwords, and a bind without a user entry, give None (checklist 32)."""
    ad, _ = provider()
    assert await ad.authenticate(login, password) is None


# -- usersInfo ---------------------------------------------------------------------------------


async def test_list_users() -> None:
    """Users with a UPN and an accepted group, nesting resolved; ids as at login (checklist 23)."""
    ad, directory = provider()
    users = {u.user_id: u for u in await ad.list_users()}
    assert set(users) == {"username:alice", "username:bob", "username:nosam"}
    assert users["username:alice"].full_name == "Alice Doe"
    assert list(users["username:alice"].roles) == ALICE_ROLES
    assert directory.binds == ["svc-odk@corp.example"]  # the read-only account
