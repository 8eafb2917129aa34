"""The DHIS2 backend (IDENTITY.md §9; checklist 33–35) against a fake DHIS2: an aiohttp.web
app in the test process, started with aiohttp's test server, answering canned Web API data."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sync_endpoint.app import create_app
from sync_endpoint.errors import ServiceUnavailable
from sync_endpoint.identity.dhis2 import ROLE_GROUPS, Dhis2IdentityProvider
from sync_endpoint.settings import Secret, Settings
from tests.conftest import make_settings
from tests.services.postgres import free_port

UNITS = {  # id: (displayName, parent id)
    "ou-bo": ("Bo", None),
    "ou-badjia": ("Badjia", "ou-bo"),
    "ou-bagbo": ("Bagbo", "ou-bo"),
    "ou-kenema": ("Kenema", None),
    "ou-nongowa": ("Nongowa", "ou-kenema"),
}
GROUPS = {
    "g-sync": "ODK_SYNC_TABLES",
    "g-field": "Field Team A",
    "g-admin": "ODK_SITE_ADMIN",
    "g-lower": "odk_sync_tables",  # not the configured name: case matters (§9.1)
}
USER = web.RequestKey("user", object)
KOFI = ["AUTH_DHIS2", "GROUP_BADJIA", "GROUP_BAGBO", "GROUP_BO", "GROUP_FIELD_TEAM_A",
        "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER"]  # fmt: skip


@dataclass(eq=False)
class FakeUser:
    id: str
    password: str
    units: list[str]
    groups: list[str]
    legacy: bool = False  # user name only under userCredentials (older DHIS2)


@dataclass
class FakeDhis2:
    """State and request log of the fake; `status`/`delay`/`html` simulate failures."""

    users: dict[str, FakeUser] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Basic user)
    status: int = 200
    delay: float = 0.0
    html: bool = False
    in_flight: int = 0
    max_in_flight: int = 0

    def descendants(self, unit: str) -> list[str]:
        found = [unit]
        for child, (_, parent) in UNITS.items():
            if parent == unit:
                found += self.descendants(child)
        return found

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/api/me", self.me)
        app.router.add_get("/api/organisationUnits", self.hierarchy)
        app.router.add_get("/api/organisationUnits/{id}", self.unit)
        app.router.add_get("/api/userGroups", self.visible_groups)
        app.router.add_get("/api/users", self.all_users)
        app.router.add_get("/api/users/{id}/organisationUnits", self.user_units)
        app.router.add_get("/api/users/{id}/userGroups", self.user_groups)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        login, _, password = (
            base64.b64decode(request.headers.get("Authorization", "Basic Og==").split(" ", 1)[1])
            .decode()
            .partition(":")
        )
        self.requests.append((request.path, login))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay or 0.001)
            if self.status != 200:
                return web.Response(status=self.status, text="server error")
            if self.html:
                return web.Response(text="<html>login</html>", content_type="text/html")
            user = self.users.get(login)
            if user is None or user.password != password:
                return web.Response(status=401)
            request[USER] = user
            return await handler(request)
        finally:
            self.in_flight -= 1

    def units(self, ids: list[str]) -> list[dict[str, str]]:
        return [{"id": i, "displayName": UNITS[i][0]} for i in ids]

    async def me(self, request: web.Request) -> web.Response:
        user = request[USER]
        assert isinstance(user, FakeUser)
        login = next(name for name, u in self.users.items() if u is user)
        body: dict[str, Any] = {
            "id": user.id,
            "userCredentials": {"username": login},
            "organisationUnits": self.units(user.units),
            "userGroups": [{"id": g, "displayName": GROUPS[g]} for g in user.groups],
        }
        if not user.legacy:
            body["username"] = login
        return web.json_response(body)

    async def hierarchy(self, request: web.Request) -> web.Response:
        assert request.query["withinUserHierarchy"] == "true"
        user = request[USER]
        assert isinstance(user, FakeUser)
        ids = [d for unit in user.units for d in self.descendants(unit)]
        return web.json_response({"organisationUnits": self.units(ids)})

    async def unit(self, request: web.Request) -> web.Response:
        assert request.query["includeDescendants"] == "true"
        return web.json_response(
            {"organisationUnits": self.units(self.descendants(request.match_info["id"]))}
        )

    async def visible_groups(self, request: web.Request) -> web.Response:
        """Every group the caller can *see*: the reference's over-granting source (§9.4)."""
        return web.json_response({"userGroups": [{"displayName": n} for n in GROUPS.values()]})

    def by_id(self, user_id: str) -> FakeUser:
        return next(u for u in self.users.values() if u.id == user_id)

    async def all_users(self, request: web.Request) -> web.Response:
        if request[USER] is not self.users["admin"]:
            return web.Response(status=403)
        return web.json_response(
            {
                "users": [
                    {"id": u.id, "userCredentials": {"username": n}} for n, u in self.users.items()
                ]
            }
        )

    async def user_units(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"organisationUnits": self.units(self.by_id(request.match_info["id"]).units)}
        )

    async def user_groups(self, request: web.Request) -> web.Response:
        user = self.by_id(request.match_info["id"])
        return web.json_response(
            {"userGroups": [{"id": g, "displayName": GROUPS[g]} for g in user.groups]}
        )


@pytest.fixture
def fake() -> FakeDhis2:
    return FakeDhis2(
        users={
            "kofi": FakeUser("u-kofi", "kofi-pw", ["ou-bo"], ["g-sync", "g-field"]),
            "ama": FakeUser("u-ama", "ama-pw", ["ou-kenema"], ["g-lower"], legacy=True),
            "admin": FakeUser("u-admin", "district", [], ["g-admin"]),
            "idle": FakeUser("u-idle", "idle-pw", [], []),
        }
    )


@pytest.fixture
async def api_url(fake: FakeDhis2, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(fake.app())
    return str(server.make_url("/api"))


def dhis2_settings(api_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "identity_backend": "dhis2",
        "dhis2_api_url": api_url,
        "dhis2_admin_user": "admin",
        "dhis2_admin_password": Secret("district"),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def provider(api_url: str) -> Any:
    result = Dhis2IdentityProvider.from_settings(dhis2_settings(api_url))
    yield result
    await result.close()


async def test_login_maps_org_units_and_groups(
    provider: Dhis2IdentityProvider, fake: FakeDhis2
) -> None:
    """IDENTITY §9.5: kofi's org unit, its descendants and his groups; no default group."""
    principal = await provider.authenticate("kofi", "kofi-pw")
    assert principal is not None
    assert sorted(principal.authorities) == KOFI
    assert principal.default_group is None
    assert (principal.login, principal.user_id) == ("kofi", "username:kofi")
    assert {user for _, user in fake.requests} == {"kofi"}  # the user's own credentials (33)


async def test_only_groups_the_user_is_a_member_of(
    provider: Dhis2IdentityProvider, fake: FakeDhis2
) -> None:
    """Groups come from /me, never from /userGroups (visible groups): no stray site admin (§9.4)."""
    principal = await provider.authenticate("kofi", "kofi-pw")
    assert principal is not None
    assert "ROLE_SITE_ACCESS_ADMIN" not in principal.authorities
    assert "/api/userGroups" not in {path for path, _ in fake.requests}
    assert {path for path, _ in fake.requests} == {"/api/me", "/api/organisationUnits"}


async def test_mapping_is_exact_and_case_sensitive(provider: Dhis2IdentityProvider) -> None:
    """`odk_sync_tables` is not `ODK_SYNC_TABLES`: it is a plain group; legacy user names work."""
    principal = await provider.authenticate("ama", "ama-pw")
    assert principal is not None
    assert principal.user_id == "username:ama"
    assert sorted(principal.authorities) == [
        "AUTH_DHIS2", "GROUP_KENEMA", "GROUP_NONGOWA", "GROUP_ODK_SYNC_TABLES", "ROLE_USER",
    ]  # fmt: skip


def test_configured_names_map_to_roles() -> None:
    """Each of the seven settings maps its DHIS2 name to its role (checklist 34)."""
    names = {group: f"DHIS {group}" for group in ROLE_GROUPS}
    provider = Dhis2IdentityProvider("http://dhis2.invalid/api", "a", Secret("b"), names)
    expected = {
        "site_admins": "ROLE_SITE_ACCESS_ADMIN",
        "administer_tables": "ROLE_ADMINISTER_TABLES",
        "super_user_tables": "ROLE_SUPER_USER_TABLES",
        "synchronize_tables": "ROLE_SYNCHRONIZE_TABLES",
        "form_managers": "ROLE_DATA_OWNER",
        "data_viewers": "ROLE_DATA_VIEWER",
        "data_collectors": "ROLE_DATA_COLLECTOR",
    }
    for group, role in expected.items():
        authorities = provider.authorities([f"DHIS {group}"])
        assert role in authorities
        assert {"AUTH_DHIS2", "ROLE_USER"} <= authorities
        assert "USER_IS_REGISTERED" not in authorities
    assert provider.authorities([]) == frozenset()
    assert provider.authorities(["dhis site_admins"]) == {
        "GROUP_DHIS_SITE_ADMINS",
        "AUTH_DHIS2",
        "ROLE_USER",
    }


@pytest.mark.parametrize(
    ("login", "password"), [("kofi", "wrong"), ("nobody", "x"), ("kofi", ""), ("", "kofi-pw")]
)
async def test_rejected_credentials(
    provider: Dhis2IdentityProvider, fake: FakeDhis2, login: str, password: str
) -> None:
    """DHIS2's 401 (or an empty field, without asking DHIS2) gives None, i.e. 401 (checklist 33)."""
    assert await provider.authenticate(login, password) is None
    if not login or not password:
        assert fake.requests == []


async def test_server_error_is_503(provider: Dhis2IdentityProvider, fake: FakeDhis2) -> None:
    """A 5xx from DHIS2 is ServiceUnavailable, not a wrong password."""
    fake.status = 502
    with pytest.raises(ServiceUnavailable):
        await provider.authenticate("kofi", "kofi-pw")


async def test_non_json_answer_is_503(provider: Dhis2IdentityProvider, fake: FakeDhis2) -> None:
    """A login page instead of JSON (a proxy, a wrong URL) is ServiceUnavailable."""
    fake.html = True
    with pytest.raises(ServiceUnavailable):
        await provider.authenticate("kofi", "kofi-pw")


async def test_timeout_is_503(api_url: str, fake: FakeDhis2) -> None:
    """A DHIS2 slower than SYNC_DHIS2_TIMEOUT_SECONDS is ServiceUnavailable within that time."""
    fake.delay = 5
    provider = Dhis2IdentityProvider.from_settings(
        dhis2_settings(api_url, dhis2_timeout_seconds=0.3)
    )
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServiceUnavailable):
            await provider.authenticate("kofi", "kofi-pw")
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        await provider.close()


async def test_unreachable_is_503() -> None:
    """Nothing listening at the API URL is ServiceUnavailable."""
    provider = Dhis2IdentityProvider.from_settings(
        dhis2_settings(f"http://127.0.0.1:{free_port()}/api")
    )
    try:
        with pytest.raises(ServiceUnavailable):
            await provider.authenticate("kofi", "kofi-pw")
        with pytest.raises(ServiceUnavailable):
            await provider.ping()
    finally:
        await provider.close()


async def test_list_users(provider: Dhis2IdentityProvider, fake: FakeDhis2) -> None:
    """The admin lists everyone with an authority, through the §9.3 calls (checklist 35)."""
    users = {u.user_id: u for u in await provider.list_users()}
    assert set(users) == {"username:kofi", "username:ama", "username:admin"}  # idle has none
    assert list(users["username:kofi"].roles) == KOFI
    assert users["username:kofi"].full_name == "kofi"
    assert "ROLE_SITE_ACCESS_ADMIN" in users["username:admin"].roles
    assert {user for _, user in fake.requests} == {"admin"}
    paths = {path for path, _ in fake.requests}
    assert "/api/users/u-kofi/organisationUnits" in paths
    assert "/api/users/u-kofi/userGroups" in paths
    assert "/api/organisationUnits/ou-bo" in paths


async def test_list_users_bounded_and_deduplicated(
    provider: Dhis2IdentityProvider, fake: FakeDhis2
) -> None:
    """Forty users in one org unit: at most 8 requests in flight, the unit fetched once."""
    for i in range(40):
        fake.users[f"field{i}"] = FakeUser(f"u-field{i}", "pw", ["ou-bo"], ["g-sync"])
    users = await provider.list_users()
    assert len(users) == 43
    assert fake.max_in_flight <= 8
    assert Counter(path for path, _ in fake.requests)["/api/organisationUnits/ou-bo"] == 1


async def test_rejected_admin_is_503(api_url: str) -> None:
    """A wrong admin password makes usersInfo and /ready fail with 503, not an empty list."""
    provider = Dhis2IdentityProvider.from_settings(
        dhis2_settings(api_url, dhis2_admin_password=Secret("wrong"))
    )
    try:
        with pytest.raises(ServiceUnavailable):
            await provider.list_users()
        with pytest.raises(ServiceUnavailable):
            await provider.ping()
        assert await provider.authenticate("kofi", "kofi-pw") is not None  # logins still work
    finally:
        await provider.close()


async def test_privileges_info_through_the_app(
    api_url: str, aiohttp_client: Any, tmp_path: Path, database_url: str
) -> None:
    """With SYNC_IDENTITY_BACKEND=dhis2 the server answers privilegesInfo from DHIS2 (36)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    settings = make_settings(
        data_dir, database_url, identity_backend="dhis2", dhis2_api_url=api_url,
        dhis2_admin_user="admin", dhis2_admin_password=Secret("district"),
    )  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    token = base64.b64encode(b"kofi:kofi-pw").decode()
    response = await client.get(
        "/odktables/default/privilegesInfo", headers={"Authorization": f"Basic {token}"}
    )
    assert response.status == 200
    assert await response.json() == {
        "user_id": "username:kofi",
        "full_name": "kofi",
        "defaultGroup": None,
        "roles": KOFI,
    }
    assert (await client.get("/ready")).status == 200
