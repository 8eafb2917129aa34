"""The embedded `file` directory (DECISIONS D13): LDAP layout in an LDIF file, IDENTITY §4, §6."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from sync_endpoint.core.models import Principal
from sync_endpoint.identity.file import Directory, DirectoryFile, FileIdentityProvider
from sync_endpoint.identity.ldif import parse
from tests.services.slapd import SlapdServer, require_slapd_or_skip

BASE_DN = "dc=example,dc=org"
PREFIX = "default_prefix"
LOCAL = ("AUTH_LOCAL", "ROLE_USER", "USER_IS_REGISTERED")


@pytest.fixture
def source(tmp_path: Path) -> DirectoryFile:
    return DirectoryFile(tmp_path / "data" / "directory.ldif", BASE_DN, PREFIX)


@pytest.fixture
def provider(source: DirectoryFile) -> FileIdentityProvider:
    return FileIdentityProvider(source)


def add(source: DirectoryFile, login: str, password: str, *groups: str) -> None:
    with source.editing() as directory:
        directory.add_user(login, password, list(groups))


async def login(provider: FileIdentityProvider, name: str, password: str) -> Principal:
    principal = await provider.authenticate(name, password)
    assert principal is not None, f"{name} could not sign in"
    return principal


# Authorities of each bootstrap group: IDENTITY §4.4 with AUTH_LOCAL in place of AUTH_LDAP.
AUTHORITY_SETS = {
    "site_admins": [
        "ROLE_ADMINISTER_TABLES", "ROLE_DATA_COLLECTOR", "ROLE_DATA_OWNER", "ROLE_DATA_VIEWER",
        "ROLE_SITE_ACCESS_ADMIN", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES",
    ],
    "administer_tables": [
        "ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES",
    ],
    "super_user_tables": ["ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES"],
    "synchronize_tables": ["ROLE_SYNCHRONIZE_TABLES"],
    "form_managers": ["ROLE_DATA_OWNER", "ROLE_DATA_VIEWER"],
    "data_viewers": ["ROLE_DATA_VIEWER"],
    "data_collectors": ["ROLE_DATA_COLLECTOR"],
    "region-north": ["GROUP_REGION_NORTH"],
}  # fmt: skip


@pytest.mark.parametrize(("group", "roles"), sorted(AUTHORITY_SETS.items()))
async def test_authorities_per_group(
    source: DirectoryFile, provider: FileIdentityProvider, group: str, roles: list[str]
) -> None:
    """A member of one group holds exactly IDENTITY §4.4's set, with AUTH_LOCAL."""
    add(source, "alice", "alice-pw", group)
    principal = await login(provider, "alice", "alice-pw")
    assert sorted(principal.authorities) == sorted([*roles, *LOCAL])
    assert principal.login == "alice"
    assert principal.user_id == "username:alice"


async def test_custom_group(source: DirectoryFile, provider: FileIdentityProvider) -> None:
    """A custom group `region-north` is created as `default_prefix region-north`."""
    add(source, "alice", "pw", "synchronize_tables", "region-north")
    principal = await login(provider, "alice", "pw")
    assert "GROUP_REGION_NORTH" in principal.authorities
    assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities
    directory = source.load()
    assert directory.group_names_of("alice") == [
        "default_prefix synchronize_tables",
        "default_prefix region-north",
    ]
    custom = next(g for g in directory.groups if g.cn == "default_prefix region-north")
    assert custom.gid_number > 506  # after the bootstrap groups 500–506


async def test_group_given_by_full_name(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A group may be named by its full cn; it is the same group, not a new one."""
    add(source, "alice", "pw", "default_prefix synchronize_tables")
    add(source, "bob", "pw", "Synchronize-Tables")
    directory = source.load()
    assert len(directory.groups) == 7
    assert directory.group_names_of("bob") == ["default_prefix synchronize_tables"]


@pytest.mark.parametrize(
    ("groups", "default"),
    [
        (["synchronize_tables", "region-north"], "ROLE_SYNCHRONIZE_TABLES"),
        (["region-north", "synchronize_tables"], "GROUP_REGION_NORTH"),
        (["site_admins"], "ROLE_SITE_ACCESS_ADMIN"),
    ],
)
async def test_default_group_is_the_first_group(
    source: DirectoryFile, provider: FileIdentityProvider, groups: list[str], default: str
) -> None:
    """The first group given becomes the gidNumber, reported normalised (IDENTITY §6)."""
    add(source, "alice", "pw", *groups)
    assert (await login(provider, "alice", "pw")).default_group == default


async def test_default_group_the_user_left_is_null(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A gidNumber naming a group the user is no longer in gives no default group (§6)."""
    add(source, "alice", "pw", "synchronize_tables", "region-north")
    with source.editing() as directory:
        for group in directory.groups:
            if group.cn.endswith("synchronize_tables"):
                group.members.remove("alice")
    principal = await login(provider, "alice", "pw")
    assert principal.default_group is None
    assert "GROUP_REGION_NORTH" in principal.authorities


async def test_user_without_group_has_no_authority(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A user in no group signs in with an empty authority set (IDENTITY §4.1)."""
    add(source, "carol", "carol-pw", "synchronize_tables")
    with source.editing() as directory:
        for group in directory.groups:
            group.members = [m for m in group.members if m != "carol"]
    principal = await login(provider, "carol", "carol-pw")
    assert principal.authorities == frozenset()
    assert principal.default_group is None


def test_add_user_needs_a_group(source: DirectoryFile) -> None:
    """Adding a user without any group is refused."""
    with pytest.raises(ValueError, match="group"), source.editing() as directory:
        directory.add_user("dave", "pw", [])


async def test_login_is_case_insensitive(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """`ALICE` signs in as `alice`."""
    add(source, "alice", "pw", "synchronize_tables")
    principal = await login(provider, "ALICE", "pw")
    assert principal.user_id == "username:alice"
    assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities


async def test_wrong_password_and_unknown_user(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A wrong password, an empty one or an unknown login gives None."""
    add(source, "alice", "pw", "synchronize_tables")
    assert await provider.authenticate("alice", "PW") is None
    assert await provider.authenticate("alice", "") is None
    assert await provider.authenticate("nobody", "pw") is None


async def test_missing_file_is_an_empty_directory(provider: FileIdentityProvider) -> None:
    """Without a file there are no users (and ping works)."""
    await provider.ping()
    assert await provider.authenticate("admin", "admin") is None
    assert await provider.list_users() == []


async def test_list_users_excludes_users_without_authority(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """usersInfo lists only users holding an authority, with their sorted roles."""
    add(source, "bob", "pw", "data_viewers")
    add(source, "alice", "pw", "synchronize_tables")
    add(source, "carol", "pw", "synchronize_tables")
    with source.editing() as directory:
        for group in directory.groups:
            group.members = [m for m in group.members if m != "carol"]
    users = await provider.list_users()
    assert [u.user_id for u in users] == ["username:alice", "username:bob"]
    assert users[0].roles == (
        "AUTH_LOCAL",
        "ROLE_SYNCHRONIZE_TABLES",
        "ROLE_USER",
        "USER_IS_REGISTERED",
    )
    assert users[0].full_name == "alice"


async def test_reload_after_the_file_changes(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A user added to the file afterwards can sign in without a new provider."""
    add(source, "alice", "pw", "synchronize_tables")
    await login(provider, "alice", "pw")
    assert await provider.authenticate("bob", "bob-pw") is None
    add(source, "bob", "bob-pw", "data_collectors")
    assert "ROLE_DATA_COLLECTOR" in (await login(provider, "bob", "bob-pw")).authorities


async def test_reload_sees_same_size_rewrite_in_same_mtime_tick(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """A password reset is seen even when the rewritten file has the same size and mtime."""
    add(source, "alice", "old-pw", "synchronize_tables")
    await login(provider, "alice", "old-pw")
    before = source.path.stat()
    add(source, "alice", "new-pw", "synchronize_tables")
    after = source.path.stat()
    assert after.st_size == before.st_size
    os.utime(source.path, ns=(before.st_atime_ns, before.st_mtime_ns))  # one coarse tick
    assert await provider.authenticate("alice", "new-pw") is not None
    assert await provider.authenticate("alice", "old-pw") is None


async def test_remove_user(source: DirectoryFile, provider: FileIdentityProvider) -> None:
    """A removed user can no longer sign in and leaves every group."""
    add(source, "alice", "pw", "synchronize_tables", "region-north")
    await login(provider, "alice", "pw")
    with source.editing() as directory:
        assert directory.remove_user("ALICE")
        assert not directory.remove_user("alice")
    assert await provider.authenticate("alice", "pw") is None
    assert all("alice" not in g.members for g in source.load().groups)


async def test_add_replaces_existing_user(
    source: DirectoryFile, provider: FileIdentityProvider
) -> None:
    """Adding an existing login replaces its password and groups."""
    add(source, "alice", "old", "site_admins")
    add(source, "Alice", "new", "data_viewers")
    assert await provider.authenticate("alice", "old") is None
    principal = await login(provider, "alice", "new")
    assert "ROLE_SITE_ACCESS_ADMIN" not in principal.authorities
    assert "ROLE_DATA_VIEWER" in principal.authorities
    assert len(source.load().users) == 1


def test_file_layout(source: DirectoryFile) -> None:
    """The file holds the LDAP layout of IDENTITY §2 and is private to its owner."""
    add(source, "alice", "pw", "synchronize_tables")
    assert source.path.stat().st_mode & 0o777 == 0o600
    entries = dict(parse(source.path.read_text(encoding="utf-8")))
    assert entries["ou=people,dc=example,dc=org"]["ou"] == ["people"]
    group = entries["gidNumber=503,ou=default_prefix,ou=groups,dc=example,dc=org"]
    assert group["cn"] == ["default_prefix synchronize_tables"]
    assert group["memberuid"] == ["alice"]
    user = entries["uid=alice,ou=people,dc=example,dc=org"]
    assert {c.lower() for c in user["objectclass"]} >= {"inetorgperson", "posixaccount"}
    assert user["gidnumber"] == ["503"]
    assert user["userpassword"][0].startswith("{SSHA}")


def test_non_ascii_login_round_trips(source: DirectoryFile) -> None:
    """A login with non-ASCII letters survives writing and reading the file."""
    add(source, "zoë", "pw", "synchronize_tables")
    directory = source.load()
    assert directory.users["zoë"].uid == "zoë"
    assert directory.group_names_of("zoë") == ["default_prefix synchronize_tables"]


def test_empty_directory_has_the_bootstrap_groups() -> None:
    """A new directory has the seven bootstrap groups, gidNumbers 500–506 (IDENTITY §2.2)."""
    directory = Directory.empty(BASE_DN, PREFIX)
    assert [(g.gid_number, g.cn) for g in directory.groups] == [
        (500, "default_prefix site_admins"),
        (501, "default_prefix administer_tables"),
        (502, "default_prefix super_user_tables"),
        (503, "default_prefix synchronize_tables"),
        (504, "default_prefix form_managers"),
        (505, "default_prefix data_viewers"),
        (506, "default_prefix data_collectors"),
    ]


# -- the same file in a real OpenLDAP ----------------------------------------------------------


def _ldap3() -> Any:
    """Import ldap3, whose pyasn1 import emits DeprecationWarnings (errors in this suite)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ldap3

    return ldap3


@pytest.mark.parametrize("load", ["ldapadd", "slapadd"])
def test_directory_file_loads_into_real_slapd(source: DirectoryFile, load: str) -> None:
    """The written LDIF loads into slapd unchanged; users bind and their groups are found."""
    require_slapd_or_skip()
    add(source, "alice", "alice-pw", "synchronize_tables", "region-north")
    add(source, "bob", "bob-pw", "site_admins")
    ldap3 = _ldap3()
    with SlapdServer() as slapd:
        if load == "slapadd":
            slapd.start(data=source.path)
        else:
            slapd.start()
            slapd.ldapadd(source.path)
        server = ldap3.Server("127.0.0.1", port=slapd.port)
        alice_dn = f"uid=alice,ou=people,{slapd.base_dn}"
        conn = ldap3.Connection(server, user=alice_dn, password="alice-pw")
        assert conn.bind() is True
        try:
            assert conn.search(
                f"ou=groups,{slapd.base_dn}",
                "(&(objectClass=posixGroup)(memberUid=alice))",
                ldap3.SUBTREE,
                attributes=["cn", "gidNumber"],
            )
            groups = {(e.cn.value, int(e.gidNumber.value)) for e in conn.entries}
            assert groups == {
                ("default_prefix synchronize_tables", 503),
                ("default_prefix region-north", 507),
            }
            assert conn.search(alice_dn, "(objectClass=posixAccount)", attributes=["gidNumber"])
            assert int(conn.entries[0].gidNumber.value) == 503  # the default group (§6)
        finally:
            conn.unbind()
        wrong = ldap3.Connection(server, user=alice_dn, password="wrong")
        try:
            assert wrong.bind() is False
            assert wrong.result["description"] == "invalidCredentials"
        finally:
            wrong.unbind()
        bob = ldap3.Connection(server, user=f"uid=bob,ou=people,{slapd.base_dn}", password="bob-pw")
        assert bob.bind() is True
        bob.unbind()
