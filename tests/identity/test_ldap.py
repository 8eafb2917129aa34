"""The LDAP backend against a real slapd (IDENTITY.md §2–§7, §12.2, §13; checklist 6–8, 10–14,
18–19, 21–24, 28), including outages, injection attempts, the pool and the credential cache."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from sync_endpoint.errors import ServiceUnavailable
from sync_endpoint.identity import open_identity_provider
from sync_endpoint.identity.ldap import Directory, LdapIdentityProvider
from sync_endpoint.settings import Secret
from tests.identity.conftest import ldap_settings
from tests.identity.ldap_directory import BASE_DN, GROUPS, READONLY_DN
from tests.services.slapd import SlapdServer

LDAP = ["AUTH_LDAP", "ROLE_USER", "USER_IS_REGISTERED"]

# IDENTITY §4.4: the complete authority set of a member of each bootstrap group.
AUTHORITY_SETS = {
    500: [
        "ROLE_ADMINISTER_TABLES", "ROLE_DATA_COLLECTOR", "ROLE_DATA_OWNER", "ROLE_DATA_VIEWER",
        "ROLE_SITE_ACCESS_ADMIN", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES",
    ],
    501: ["ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES"],
    502: ["ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES"],
    503: ["ROLE_SYNCHRONIZE_TABLES"],
    504: ["ROLE_DATA_OWNER", "ROLE_DATA_VIEWER"],
    505: ["ROLE_DATA_VIEWER"],
    506: ["ROLE_DATA_COLLECTOR"],
}  # fmt: skip
DEFAULT_GROUPS = {
    500: "ROLE_SITE_ACCESS_ADMIN", 501: "ROLE_ADMINISTER_TABLES", 502: "ROLE_SUPER_USER_TABLES",
    503: "ROLE_SYNCHRONIZE_TABLES", 504: "ROLE_DATA_OWNER", 505: "ROLE_DATA_VIEWER",
    506: "ROLE_DATA_COLLECTOR",
}  # fmt: skip


def record_binds(provider: LdapIdentityProvider) -> list[str]:
    """Wrap the provider's connection factory; returns the list of bind identities it opens."""
    directory = provider.directory
    binds: list[str] = []
    original = directory._connection

    def connection(user: str, password: str) -> Any:
        binds.append(user)
        return original(user, password)

    directory._connection = connection  # type: ignore[method-assign]
    return binds


async def sign_in(provider: Any, login: str, password: str) -> Any:
    principal = await provider.authenticate(login, password)
    assert principal is not None, f"{login} could not sign in"
    return principal


# -- authorities and identity ----------------------------------------------------------------


@pytest.mark.parametrize(("gid", "roles"), sorted(AUTHORITY_SETS.items()))
async def test_each_bootstrap_group_gives_its_authority_set(
    ldap_provider: LdapIdentityProvider, gid: int, roles: list[str]
) -> None:
    """A member of one bootstrap group holds exactly IDENTITY §4.4's set (checklist 11–13)."""
    principal = await sign_in(ldap_provider, f"m{gid}", "m-pw")
    assert sorted(principal.authorities) == sorted([*roles, *LDAP])
    assert not any(a.startswith("GROUP_") for a in principal.authorities)
    assert principal.default_group == DEFAULT_GROUPS[gid]


async def test_alice_worked_example(ldap_provider: LdapIdentityProvider) -> None:
    """IDENTITY §13.1: alice's roles, her default group 507 and her identity strings."""
    principal = await sign_in(ldap_provider, "alice", "s3cret")
    assert sorted(principal.authorities) == [
        "AUTH_LDAP", "GROUP_REGION_NORTH", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER",
        "USER_IS_REGISTERED",
    ]  # fmt: skip
    assert principal.default_group == "GROUP_REGION_NORTH"
    assert (principal.login, principal.user_id, principal.full_name) == (
        "alice",
        "username:alice",
        "alice",
    )


async def test_bob_worked_example(ldap_provider: LdapIdentityProvider) -> None:
    """IDENTITY §13.2: bob (site_admins) holds the ten authorities, default its role."""
    principal = await sign_in(ldap_provider, "bob", "bob-pw")
    assert sorted(principal.authorities) == sorted([*AUTHORITY_SETS[500], *LDAP])
    assert principal.default_group == "ROLE_SITE_ACCESS_ADMIN"


async def test_carol_without_group_has_no_authority(ldap_provider: LdapIdentityProvider) -> None:
    """IDENTITY §13.3: the password is right but no group survives, so no authority at all."""
    principal = await sign_in(ldap_provider, "carol", "carol-pw")
    assert principal.authorities == frozenset()
    assert principal.default_group is None


async def test_groups_outside_the_group_base_are_ignored(
    ldap_provider: LdapIdentityProvider,
) -> None:
    """`staff` and a prefixed site_admins decoy under ou=groups list alice in vain (checklist 8)."""
    principal = await sign_in(ldap_provider, "alice", "s3cret")
    assert "ROLE_SITE_ACCESS_ADMIN" not in principal.authorities
    assert "GROUP_STAFF" not in principal.authorities


async def test_prefix_rule_through_the_directory(ldap_provider: LdapIdentityProvider) -> None:
    """`DEFAULT_PREFIX Site Admins` counts, `default_prefix_region` does not (checklist 10)."""
    principal = await sign_in(ldap_provider, "lena", "lena-pw")
    assert "ROLE_SITE_ACCESS_ADMIN" in principal.authorities
    assert not any("REGION" in a for a in principal.authorities)
    assert principal.default_group == "ROLE_SITE_ACCESS_ADMIN"


@pytest.mark.parametrize(
    ("login", "password", "expected"),
    [
        ("alice", "s3cret", "GROUP_REGION_NORTH"),  # gid 507, a member
        ("gina", "gina-pw", "ROLE_SYNCHRONIZE_TABLES"),  # gid 503: a role as default (§6)
        ("hank", "hank-pw", None),  # gid 500, not a member
        ("ivy", "ivy-pw", None),  # gid 999: no such group (the reference: 500)
        ("judy", "judy-pw", None),  # no gidNumber at all (the reference: 500)
    ],
)
async def test_default_group(
    ldap_provider: LdapIdentityProvider, login: str, password: str, expected: str | None
) -> None:
    """The gidNumber's group only if held; missing or unmatched gives None (checklist 19)."""
    principal = await sign_in(ldap_provider, login, password)
    assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities
    assert principal.default_group == expected


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("ALICE", "alice"), (" alice", "alice"), ("kim", "Kim"), ("Kim", "Kim")],
)
async def test_login_is_the_stored_uid(
    ldap_provider: LdapIdentityProvider, typed: str, stored: str
) -> None:
    """Any case or spacing the directory accepts binds; groups and the id use the uid as stored,
    so ids are stable (§3.2 quirk)."""
    password = "s3cret" if stored == "alice" else "kim-pw"
    principal = await sign_in(ldap_provider, typed, password)
    assert principal.login == stored
    assert principal.user_id == f"username:{stored}"
    assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities


# -- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("alice", "wrong"),
        ("alice", ""),  # never an unauthenticated bind
        ("nobody", "s3cret"),
        ("dave", "dave-pw"),  # right password, but stored under ou=contractors
        ("readonly", "readonly-pw"),  # the lookup account is no login
        ("", "s3cret"),
    ],
)
async def test_rejected_credentials(
    ldap_provider: LdapIdentityProvider, login: str, password: str
) -> None:
    """Wrong, empty, unknown and misplaced accounts all give None, i.e. 401 (checklist 4, 6)."""
    assert await ldap_provider.authenticate(login, password) is None


@pytest.mark.parametrize(
    "login",
    ["*", ")(uid=*", "\\00", "\x00", "alice\x00", "alice)(uid=*", "*)(objectClass=*",
     "alice,ou=people", "uid=alice,ou=people,dc=example,dc=org", "#alice"],
)  # fmt: skip
@pytest.mark.parametrize("password", ["s3cret", "*", "x"])
async def test_injection_attempts_never_authenticate(
    ldap_provider: LdapIdentityProvider, login: str, password: str
) -> None:
    """Filter and DN metacharacters in a login bind as no one (checklist 6, 7)."""
    assert await ldap_provider.authenticate(login, password) is None


def test_user_dn_and_filters_are_escaped(ldap_provider: LdapIdentityProvider) -> None:
    """The bind DN is DN-escaped and the member filter filter-escaped (§3.2 step 1, checklist 7)."""
    p = ldap_provider
    assert p.user_dn("alice") == f"uid=alice,ou=people,{BASE_DN}"
    assert p.user_dn("a,b=c+d") == f"uid=a\\,b\\=c\\+d,ou=people,{BASE_DN}"
    assert p.groups_filter("star*", "x") == "(memberUid=star\\2a)"
    assert p.groups_filter(")(uid=*", "x") == "(memberUid=\\29\\28uid=\\2a)"
    assert p.groups_filter("\\00", "x") == "(memberUid=\\5c00)"
    p.member_filter = "(|(member={dn})(memberUid={login}))"
    assert (
        p.groups_filter("a*", "uid=a*,ou=people")
        == "(|(member=uid=a\\2a,ou=people)(memberUid=a\\2a))"
    )
    assert p.group_base_dn == GROUPS
    assert p.prefixed_groups_filter() == "(&(objectClass=posixGroup)(cn=default_prefix *))"


async def test_metacharacters_in_a_real_uid_do_not_widen_the_search(
    ldap_provider: LdapIdentityProvider,
) -> None:
    """`star*` gets only its own group, not starlet's; `mal)(memberUid=*` gets none (7)."""
    star = await sign_in(ldap_provider, "star*", "star-pw")
    assert sorted(star.authorities) == sorted(["ROLE_SYNCHRONIZE_TABLES", *LDAP])
    mal = await sign_in(ldap_provider, "mal)(memberUid=*", "mal-pw")
    assert mal.authorities == frozenset()


async def test_password_is_checked_by_binding_as_the_user(
    ldap_provider: LdapIdentityProvider,
) -> None:
    """A bind as the user's DN checks the password; look-ups bind as readonly (checklist 6, 28)."""
    binds = record_binds(ldap_provider)
    await sign_in(ldap_provider, "alice", "s3cret")
    assert binds[0] == f"uid=alice,ou=people,{BASE_DN}"
    assert set(binds[1:]) <= {READONLY_DN}
    binds.clear()
    assert await ldap_provider.authenticate("alice", "wrong") is None
    assert binds == [f"uid=alice,ou=people,{BASE_DN}"]  # no look-up after a failed bind


# -- usersInfo -------------------------------------------------------------------------------


async def test_list_users(
    ldap_provider: LdapIdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Members of prefixed groups with givenName; ungrouped and dangling ones skipped (21, 24)."""
    with caplog.at_level(logging.WARNING, logger="sync_endpoint.identity.ldap"):
        users = {u.user_id: u for u in await ldap_provider.list_users()}
    alice, bob = users["username:alice"], users["username:bob"]
    assert (alice.full_name, list(alice.roles)) == (
        "Alice",
        ["AUTH_LDAP", "GROUP_REGION_NORTH", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER",
         "USER_IS_REGISTERED"],
    )  # fmt: skip
    assert bob.full_name == "Bob"
    assert list(bob.roles) == sorted([*AUTHORITY_SETS[500], *LDAP])
    assert users["username:gina"].full_name == "gina"  # no givenName: the uid
    assert users["username:starlet"].roles == (
        "AUTH_LDAP",
        "GROUP_STARRED",
        "ROLE_USER",
        "USER_IS_REGISTERED",
    )
    for absent in ("carol", "dave", "ghost", "mal)(memberUid=*", "staff"):
        assert f"username:{absent}" not in users
    assert "'ghost'" in caplog.text
    assert "'dave'" in caplog.text


async def test_user_ids_agree_between_login_and_list(
    ldap_provider: LdapIdentityProvider,
) -> None:
    """privilegesInfo and usersInfo give one person the same id and roles (checklist 23)."""
    users = {u.user_id: u for u in await ldap_provider.list_users()}
    for login, password in [("alice", "s3cret"), ("BOB", "bob-pw"), ("kim", "kim-pw")]:
        principal = await sign_in(ldap_provider, login, password)
        assert users[principal.user_id].roles == tuple(sorted(principal.authorities))


# -- the read-only account, outages, the pool --------------------------------------------------


async def test_wrong_readonly_password_is_503_and_logged(
    slapd: SlapdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A rejected lookup account is ServiceUnavailable with a log line naming it (checklist 28)."""
    settings = ldap_settings(slapd.url, ldap_bind_password=Secret("not-the-password"))
    provider = LdapIdentityProvider.from_settings(settings)
    try:
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            with pytest.raises(ServiceUnavailable):
                await provider.authenticate("alice", "s3cret")
            with pytest.raises(ServiceUnavailable):
                await provider.list_users()
            with pytest.raises(ServiceUnavailable):
                await provider.ping()
        assert READONLY_DN in caplog.text
        assert "invalidCredentials" in caplog.text
        assert "SYNC_LDAP_BIND_PASSWORD" in caplog.text
        assert "not-the-password" not in caplog.text
        # A wrong *user* password is still a plain rejection: the bind comes first.
        assert await provider.authenticate("alice", "wrong") is None
    finally:
        await provider.close()


async def test_paused_directory_times_out(own_slapd: SlapdServer) -> None:
    """A directory that accepts but never answers gives 503 within the 5 s timeout (D13)."""
    provider = LdapIdentityProvider.from_settings(ldap_settings(own_slapd.url))
    try:
        await sign_in(provider, "alice", "s3cret")  # a pooled lookup connection exists now
        own_slapd.pause()
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await provider.authenticate("bob", "bob-pw")
        assert time.monotonic() - started < 6
        own_slapd.resume()
        await sign_in(provider, "bob", "bob-pw")
    finally:
        own_slapd.resume()
        await provider.close()


async def test_stopped_directory_and_recovery(
    own_slapd: SlapdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A stopped directory is 503 at once; after a restart the pool reconnects by itself."""
    provider = LdapIdentityProvider.from_settings(ldap_settings(own_slapd.url))
    try:
        await sign_in(provider, "alice", "s3cret")
        own_slapd.terminate()
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            with pytest.raises(ServiceUnavailable):
                await provider.authenticate("alice", "s3cret")
            with pytest.raises(ServiceUnavailable):
                await provider.ping()
        assert time.monotonic() - started < 6
        assert "Connection refused" in caplog.text or "LDAPSocketOpenError" in caplog.text
        own_slapd.restart()
        await provider.ping()  # the stale pooled connection is replaced
        await sign_in(provider, "alice", "s3cret")
        assert len(await provider.list_users()) > 10
    finally:
        await provider.close()


async def test_ping_checks_the_group_base(slapd: SlapdServer) -> None:
    """/ready's probe passes on the real layout and fails when the group base is missing."""
    good = LdapIdentityProvider.from_settings(ldap_settings(slapd.url))
    bad = LdapIdentityProvider.from_settings(
        ldap_settings(slapd.url, ldap_group_base="ou=missing,ou=groups")
    )
    try:
        await good.ping()
        with pytest.raises(ServiceUnavailable):
            await bad.ping()
    finally:
        await good.close()
        await bad.close()


async def test_lookup_pool_is_bounded(slapd: SlapdServer) -> None:
    """Twenty parallel logins share at most SYNC_LDAP_POOL_SIZE lookup connections."""
    provider = LdapIdentityProvider.from_settings(ldap_settings(slapd.url, ldap_pool_size=2))
    binds = record_binds(provider)
    try:
        logins = [("alice", "s3cret"), ("bob", "bob-pw"), ("gina", "gina-pw"), ("Kim", "kim-pw")]
        results = await asyncio.gather(*(sign_in(provider, *logins[i % 4]) for i in range(20)))
        assert {p.login for p in results} == {"alice", "bob", "gina", "Kim"}
        assert binds.count(READONLY_DN) <= 2
        assert len(provider.directory._idle) <= 2
    finally:
        await provider.close()


async def test_cache_serves_repeated_logins_without_binding(slapd: SlapdServer) -> None:
    """Through open_identity_provider, a repeated good login is answered from the cache (D13)."""
    stack = open_identity_provider(ldap_settings(slapd.url, credential_cache_seconds=60))
    inner = stack.inner
    assert isinstance(inner, LdapIdentityProvider)
    binds = record_binds(inner)
    user_dn = f"uid=alice,ou=people,{BASE_DN}"
    try:
        for _ in range(5):
            await sign_in(stack, "alice", "s3cret")
        assert binds.count(user_dn) == 1
        assert await stack.authenticate("alice", "wrong") is None  # also drops the entry
        await sign_in(stack, "alice", "s3cret")
        assert binds.count(user_dn) == 3
    finally:
        await stack.close()


def test_directory_url_forms() -> None:
    """ldap:// and ldaps:// URLs give the right host, port and TLS mode without connecting."""
    plain = LdapIdentityProvider.from_settings(ldap_settings("ldap://ldap-service"))
    secure = LdapIdentityProvider.from_settings(ldap_settings("ldaps://dc.example.org"))
    assert isinstance(plain.directory, Directory)
    plain_server, secure_server = plain.directory._make_server(), secure.directory._make_server()
    assert (plain_server.host, plain_server.port, plain_server.ssl) == ("ldap-service", 389, False)
    assert (secure_server.port, secure_server.ssl) == (636, True)
