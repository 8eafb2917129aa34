"""One identity contract every backend passes (IDENTITY.md §4, §6, §12, §15; DECISIONS D13).

The same people live in one LDIF (the bootstrap layout of ldap/bootstrap.ldif plus the people
below), loaded unchanged as the `file` backend's directory file and into a real slapd for the
`ldap` backend. Only the AUTH_* authority differs between backends; it is a parameter.

| login | groups (memberUid) | gidNumber |
|---|---|---|
| alice | synchronize_tables, region_north | 507 region_north (held) |
| bob | site_admins | 500 (held) |
| tadmin | administer_tables | 501 (held) |
| carol | none | 503 (not held: no group at all) |
| dave | synchronize_tables | 500 (a group he is not in) |
| erin | synchronize_tables | 999 (no such group) |
| nora | region_north only | 507 (held) |
| m500 … m506 | exactly that bootstrap group | that group |
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sync_endpoint.app import create_app
from sync_endpoint.core.ports import IdentityProvider
from sync_endpoint.identity import ldif, open_backend
from sync_endpoint.identity.passwords import hash_password
from sync_endpoint.settings import Secret, Settings
from tests.conftest import make_settings
from tests.identity.ldap_directory import (
    BASE_DN,
    BOOTSTRAP,
    READONLY_DN,
    READONLY_PASSWORD,
    root_records,
)
from tests.services.slapd import SlapdServer, require_slapd_or_skip

PREFIX = "default_prefix"
GROUPS_DN = f"ou={PREFIX},ou=groups,{BASE_DN}"
REGION_NORTH = 507
ODK = {"X-OpenDataKit-Version": "2.0"}
APP = "/odktables/default"

#: Bootstrap gidNumbers (IDENTITY §2.2) and the custom group, by short name.
GIDS = {
    "site_admins": 500,
    "administer_tables": 501,
    "super_user_tables": 502,
    "synchronize_tables": 503,
    "form_managers": 504,
    "data_viewers": 505,
    "data_collectors": 506,
    "region_north": REGION_NORTH,
}

#: IDENTITY §4.4 without the three backend defaults: what membership of one group grants.
GRANTS = {
    "site_admins": {
        "ROLE_ADMINISTER_TABLES", "ROLE_DATA_COLLECTOR", "ROLE_DATA_OWNER", "ROLE_DATA_VIEWER",
        "ROLE_SITE_ACCESS_ADMIN", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES",
    },
    "administer_tables": {
        "ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES",
    },
    "super_user_tables": {"ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES"},
    "synchronize_tables": {"ROLE_SYNCHRONIZE_TABLES"},
    "form_managers": {"ROLE_DATA_OWNER", "ROLE_DATA_VIEWER"},
    "data_viewers": {"ROLE_DATA_VIEWER"},
    "data_collectors": {"ROLE_DATA_COLLECTOR"},
    "region_north": {"GROUP_REGION_NORTH"},
}  # fmt: skip

#: §6: the default group a gidNumber names, reported when the user holds it.
DEFAULT_NAMES = {
    "site_admins": "ROLE_SITE_ACCESS_ADMIN",
    "administer_tables": "ROLE_ADMINISTER_TABLES",
    "super_user_tables": "ROLE_SUPER_USER_TABLES",
    "synchronize_tables": "ROLE_SYNCHRONIZE_TABLES",
    "form_managers": "ROLE_DATA_OWNER",
    "data_viewers": "ROLE_DATA_VIEWER",
    "data_collectors": "ROLE_DATA_COLLECTOR",
    "region_north": "GROUP_REGION_NORTH",
}
BOOTSTRAP_GROUPS = [name for name in GIDS if name != "region_north"]
#: Added by every backend besides its AUTH_* when at least one group survives (§4.1).
DEFAULTS = ("ROLE_USER", "USER_IS_REGISTERED")


@dataclass(frozen=True)
class Person:
    uid: str
    password: str
    groups: tuple[str, ...]
    gid: int
    given_name: str | None = None

    @property
    def full_name(self) -> str:
        """What a full usersInfo list reports: givenName, else the uid (§12.2)."""
        return self.given_name or self.uid

    def authorities(self, auth: str) -> list[str]:
        """The sorted authority set this person must hold under a backend adding `auth`."""
        found: set[str] = set()
        for group in self.groups:
            found |= GRANTS[group]
        if found:
            found |= {auth, *DEFAULTS}
        return sorted(found)


PEOPLE = {
    p.uid: p
    for p in [
        Person("alice", "alice-pw", ("synchronize_tables", "region_north"), REGION_NORTH, "Alice"),
        Person("bob", "bob-pw", ("site_admins",), 500, "Bob"),
        Person("tadmin", "tadmin-pw", ("administer_tables",), 501),
        Person("carol", "carol-pw", (), 503),
        Person("dave", "dave-pw", ("synchronize_tables",), 500),
        Person("erin", "erin-pw", ("synchronize_tables",), 999),
        Person("nora", "nora-pw", ("region_north",), REGION_NORTH),
        *[Person(f"m{GIDS[g]}", "m-pw", (g,), GIDS[g]) for g in BOOTSTRAP_GROUPS],
    ]
}


@dataclass(frozen=True)
class Backend:
    """One identity backend holding PEOPLE: its settings and the AUTH_* authority it adds."""

    name: str
    auth: str
    settings: dict[str, Any]


def build_directory_ldif() -> str:
    """Root, read-only account, ldap/bootstrap.ldif with members added, region_north, PEOPLE."""
    members: dict[int, list[str]] = {}
    for person in PEOPLE.values():
        for group in person.groups:
            members.setdefault(GIDS[group], []).append(person.uid)
    records = root_records()
    for dn, attrs in ldif.parse(BOOTSTRAP.read_text(encoding="utf-8")):
        pairs = [(name, value) for name, values in attrs.items() for value in values]
        if "gidnumber" in attrs:
            pairs += [("memberUid", m) for m in members.get(int(attrs["gidnumber"][0]), [])]
        records.append((dn, pairs))
    records.append(
        (
            f"gidNumber={REGION_NORTH},{GROUPS_DN}",
            [
                ("objectClass", "top"),
                ("objectClass", "posixGroup"),
                ("cn", f"{PREFIX} region_north"),
                ("gidNumber", str(REGION_NORTH)),
                *[("memberUid", m) for m in members[REGION_NORTH]],
            ],
        )
    )
    for number, person in enumerate(PEOPLE.values(), start=1001):
        pairs = [
            ("objectClass", "top"),
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "posixAccount"),
            ("uid", person.uid),
            ("cn", person.uid),
            ("sn", person.uid),
        ]
        if person.given_name:
            pairs.append(("givenName", person.given_name))
        pairs += [
            ("uidNumber", str(number)),
            ("gidNumber", str(person.gid)),
            ("homeDirectory", f"/home/users/{person.uid}"),
            ("userPassword", hash_password(person.password)),
        ]
        records.append((f"uid={person.uid},ou=people,{BASE_DN}", pairs))
    return ldif.format_entries(records)


@pytest.fixture(scope="module")
def directory_ldif() -> str:
    """PEOPLE as one LDIF, built once so both backends hold exactly the same directory."""
    return build_directory_ldif()


@pytest.fixture(
    scope="module",
    params=[("file", "AUTH_LOCAL"), ("ldap", "AUTH_LDAP")],
    ids=["file", "ldap"],
)
def backend(request: pytest.FixtureRequest, directory_ldif: str) -> Iterator[Backend]:
    """The `file` backend over the LDIF, or the `ldap` backend over a slapd loaded with it."""
    name, auth = request.param
    folder = Path(tempfile.mkdtemp(prefix=f"identity-contract-{name}-"))
    try:
        path = folder / "directory.ldif"
        path.write_text(directory_ldif, encoding="utf-8")
        if name == "file":
            yield Backend(name, auth, {"identity_backend": "file", "directory_file": path})
            return
        require_slapd_or_skip()
        server = SlapdServer()
        server.start(data=path)
        try:
            yield Backend(
                name,
                auth,
                {
                    "identity_backend": "ldap",
                    "ldap_url": server.url,
                    "base_dn": BASE_DN,
                    "ldap_bind_dn": READONLY_DN,
                    "ldap_bind_password": Secret(READONLY_PASSWORD),
                    "ldap_timeout_seconds": 5.0,
                },
            )
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def provider(backend: Backend) -> AsyncIterator[IdentityProvider]:
    """The backend itself, without the credential cache or the login throttle."""
    result = open_backend(Settings(**backend.settings))
    yield result
    await result.close()


@pytest.fixture
async def http(
    aiohttp_client: Any, backend: Backend, tmp_path: Path, sqlite_template: Path
) -> TestClient[Any, Any]:
    """The whole application (SQLite) with this backend as its identity source."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = tmp_path / "sync.sqlite3"
    shutil.copyfile(sqlite_template, database)
    settings = make_settings(data_dir, f"sqlite+aiosqlite:///{database}", **backend.settings)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    return client


def basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {**ODK, "Authorization": f"Basic {token}"}


async def get(http: TestClient[Any, Any], path: str, login: str, status: int = 200) -> Any:
    password = PEOPLE[login].password
    response = await http.get(f"{APP}/{path}", headers=basic(login, password))
    assert response.status == status, await response.text()
    return await response.json() if status == 200 else None


# -- authenticate ------------------------------------------------------------------------------


async def test_authenticate_returns_the_principal(
    provider: IdentityProvider, backend: Backend
) -> None:
    """Right credentials give `username:<uid>`, the login as full name and every authority."""
    principal = await provider.authenticate("alice", "alice-pw")
    assert principal is not None
    assert principal.login == "alice"
    assert principal.user_id == "username:alice"
    assert principal.full_name == "alice"
    assert sorted(principal.authorities) == PEOPLE["alice"].authorities(backend.auth)
    assert principal.default_group == "GROUP_REGION_NORTH"


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice", "wrong-pw"), ("alice", "ALICE-PW"), ("nobody", "alice-pw"), ("alice", "")],
    ids=["wrong-password", "password-case", "unknown-user", "empty-password"],
)
async def test_bad_credentials_give_none(
    provider: IdentityProvider, login: str, password: str
) -> None:
    """A wrong password, an unknown user or an empty password is None (401), never an error."""
    assert await provider.authenticate(login, password) is None


async def test_login_in_another_case_is_the_stored_uid(provider: IdentityProvider) -> None:
    """`ALICE` signs in as the stored uid, so her id matches usersInfo and row ownership."""
    principal = await provider.authenticate("ALICE", "alice-pw")
    assert principal is not None
    assert (principal.login, principal.user_id, principal.full_name) == (
        "alice",
        "username:alice",
        "alice",
    )
    assert "GROUP_REGION_NORTH" in principal.authorities


async def test_user_without_group_has_no_authority(provider: IdentityProvider) -> None:
    """carol's password is right but no group survives: an empty authority set (§4.1)."""
    principal = await provider.authenticate("carol", "carol-pw")
    assert principal is not None
    assert principal.user_id == "username:carol"
    assert principal.authorities == frozenset()
    assert principal.default_group is None


async def test_user_without_group_is_forbidden(http: TestClient[Any, Any]) -> None:
    """carol gets 403 (not 401) on privilegesInfo and on the table list (checklist 14)."""
    for path in ("privilegesInfo", "tables"):
        response = await http.get(f"{APP}/{path}", headers=basic("carol", "carol-pw"))
        assert response.status == 403, path
        assert response.headers["X-OpenDataKit-Version"] == "2.0"


# -- groups to authorities ---------------------------------------------------------------------


@pytest.mark.parametrize("group", BOOTSTRAP_GROUPS)
async def test_bootstrap_group_gives_its_authority_set(
    provider: IdentityProvider, backend: Backend, group: str
) -> None:
    """A member of one bootstrap group holds exactly IDENTITY §4.4's set, with its AUTH_*."""
    person = PEOPLE[f"m{GIDS[group]}"]
    principal = await provider.authenticate(person.uid, person.password)
    assert principal is not None
    assert sorted(principal.authorities) == sorted({*GRANTS[group], backend.auth, *DEFAULTS})
    assert not any(a.startswith("GROUP_") for a in principal.authorities)
    assert principal.default_group == DEFAULT_NAMES[group]


async def test_custom_group_gives_its_group_authority(
    provider: IdentityProvider, backend: Backend
) -> None:
    """`default_prefix region_north` alone gives GROUP_REGION_NORTH and the defaults only."""
    principal = await provider.authenticate("nora", "nora-pw")
    assert principal is not None
    assert sorted(principal.authorities) == sorted(["GROUP_REGION_NORTH", backend.auth, *DEFAULTS])
    assert principal.default_group == "GROUP_REGION_NORTH"


@pytest.mark.parametrize(
    ("login", "default_group"),
    [
        ("alice", "GROUP_REGION_NORTH"),
        ("bob", "ROLE_SITE_ACCESS_ADMIN"),
        ("tadmin", "ROLE_ADMINISTER_TABLES"),
        ("dave", None),
        ("erin", None),
    ],
    ids=["custom-held", "role-held", "admin-held", "not-held", "no-such-group"],
)
async def test_default_group_from_gid_number(
    provider: IdentityProvider, login: str, default_group: str | None
) -> None:
    """The gidNumber's group, normalised, when held; None when not held or missing (§6)."""
    principal = await provider.authenticate(login, PEOPLE[login].password)
    assert principal is not None
    assert principal.default_group == default_group
    assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities


# -- identity endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "default_group"),
    [("alice", "GROUP_REGION_NORTH"), ("bob", "ROLE_SITE_ACCESS_ADMIN"), ("dave", None)],
)
async def test_privileges_info(
    http: TestClient[Any, Any], backend: Backend, login: str, default_group: str | None
) -> None:
    """privilegesInfo is exactly user_id, full_name, defaultGroup and roles sorted (§12.1)."""
    body = await get(http, "privilegesInfo", login)
    assert body == {
        "user_id": f"username:{login}",
        "full_name": login,
        "defaultGroup": default_group,
        "roles": PEOPLE[login].authorities(backend.auth),
    }
    assert body["roles"] == sorted(body["roles"])


async def test_privileges_info_of_a_login_in_another_case(http: TestClient[Any, Any]) -> None:
    """`ALICE` is reported as `username:alice` by privilegesInfo too."""
    response = await http.get(f"{APP}/privilegesInfo", headers=basic("ALICE", "alice-pw"))
    assert response.status == 200
    body = await response.json()
    assert (body["user_id"], body["full_name"]) == ("username:alice", "alice")


@pytest.mark.parametrize("login", ["bob", "tadmin", "m502"])
async def test_users_info_for_an_admin_lists_everyone_with_a_group(
    http: TestClient[Any, Any], backend: Backend, login: str
) -> None:
    """Site/table admins and super users get every grouped user plus anonymous (§12.2)."""
    body = await get(http, "usersInfo", login)
    assert all(set(entry) == {"user_id", "full_name", "roles"} for entry in body)
    expected: list[dict[str, Any]] = [
        {
            "user_id": f"username:{p.uid}",
            "full_name": p.full_name,
            "roles": p.authorities(backend.auth),
        }
        for p in PEOPLE.values()
        if p.groups
    ]
    expected.append(
        {"user_id": "anonymous", "full_name": "Anonymous Access", "roles": ["USER_IS_ANONYMOUS"]}
    )
    assert sorted(body, key=lambda e: e["user_id"]) == sorted(expected, key=lambda e: e["user_id"])
    assert "username:carol" not in {entry["user_id"] for entry in body}
    assert all(entry["roles"] == sorted(entry["roles"]) for entry in body)


@pytest.mark.parametrize("login", ["alice", "dave", "m504"])
async def test_users_info_for_others_is_only_themselves(
    http: TestClient[Any, Any], backend: Backend, login: str
) -> None:
    """Sync users (and data roles) see a one-element list: themselves (§12.2)."""
    body = await get(http, "usersInfo", login)
    assert body == [
        {
            "user_id": f"username:{login}",
            "full_name": login,
            "roles": PEOPLE[login].authorities(backend.auth),
        }
    ]
