"""The DHIS2 backend (IDENTITY.md §9): DHIS2 checks the password, its org units and user
groups become ODK-X groups and roles.

Login, with the user's own Basic credentials:
  1. `GET {api}/me?fields=…` — 401/403 means wrong credentials (None). The user's org units and
     the user groups they are a **member of** come from here; the reference read
     `{api}/userGroups`, which lists the groups a user can *see* and could grant every mapped
     role to everyone (IDENTITY §9.4) — this is the fix.
  2. `GET {api}/organisationUnits?withinUserHierarchy=true&paging=false` — the org units in the
     user's hierarchy (descendants included), as the reference.
Every display name equal to one of the seven configured names (SYNC_DHIS2_SITE_ADMINS …,
exact and case-sensitive) is replaced by the well-known group (`site_admins` …); then the
names go through core.roles with an empty prefix, plus AUTH_DHIS2 and ROLE_USER if anything
survived. No default group. The login reported is DHIS2's stored user name.

The user list (usersInfo) uses the admin account and the reference's calls (§9.3), with a
bounded number of concurrent requests and each org unit's descendants fetched once per list.
DHIS2 unreachable, timing out, answering 5xx or rejecting the admin account → 503.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp

from sync_endpoint.core.models import Principal, UserInfo
from sync_endpoint.core.roles import authorities_from_groups
from sync_endpoint.errors import ServiceUnavailable
from sync_endpoint.identity.ldap import usable_login
from sync_endpoint.settings import Secret, Settings

logger = logging.getLogger(__name__)

DHIS2_DEFAULTS = ("AUTH_DHIS2", "ROLE_USER")
ME_FIELDS = (
    "id,username,userCredentials[username],"
    "organisationUnits[id,displayName],userGroups[id,displayName]"
)
UNIT_FIELDS = "id,displayName"
CONCURRENCY = 8  # DHIS2 requests in flight while listing users

#: Setting name suffix → the well-known group it grants (core.roles.WELL_KNOWN).
ROLE_GROUPS = (
    "site_admins",
    "administer_tables",
    "super_user_tables",
    "synchronize_tables",
    "form_managers",
    "data_viewers",
    "data_collectors",
)


class _Rejected(Exception):
    """DHIS2 answered 401/403 (or redirected to its login page) to these credentials."""


async def _all(*aws: Awaitable[Any]) -> list[Any]:
    """Await all, then raise the first failure (none is left unretrieved)."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def basic_authorization(login: str, password: str) -> str:
    """An Authorization header value (UTF-8, as DHIS2 and the devices encode credentials)."""
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


def _names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [
        str(item["displayName"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("displayName"), str)
    ]


def _ids(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["id"]) for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]


def _username(user: dict[str, Any]) -> str | None:
    credentials = user.get("userCredentials")
    for value in (
        user.get("username"),
        credentials.get("username") if isinstance(credentials, dict) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


class Dhis2IdentityProvider:
    """IdentityProvider over the DHIS2 Web API, through one aiohttp ClientSession."""

    def __init__(
        self,
        api_url: str,
        admin_user: str,
        admin_password: Secret,
        mapping: dict[str, str],
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.admin = basic_authorization(admin_user, admin_password.get())
        self.admin_user = admin_user
        self.mapping: dict[str, list[str]] = {}
        for group, dhis2_name in mapping.items():
            if dhis2_name:
                self.mapping.setdefault(dhis2_name, []).append(group)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Dhis2IdentityProvider:
        mapping = {group: getattr(settings, f"dhis2_{group}") for group in ROLE_GROUPS}
        return cls(
            settings.dhis2_api_url,
            settings.dhis2_admin_user,
            settings.dhis2_admin_password,
            mapping,
            settings.dhis2_timeout_seconds,
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _get(self, path: str, authorization: str) -> dict[str, Any]:
        """GET `{api}{path}` as JSON; _Rejected on 401/403, ServiceUnavailable on failures."""
        url = self.api_url + path
        try:
            headers = {"Accept": "application/json", "Authorization": authorization}
            async with self._client().get(url, allow_redirects=False, headers=headers) as response:
                if response.status in (401, 403):
                    raise _Rejected()
                if 300 <= response.status < 400:
                    # DHIS2 sends browsers without a valid session to its login page.
                    logger.warning(
                        "DHIS2 redirected %s to %s; treated as rejected credentials",
                        path.split("?")[0],
                        response.headers.get("Location", "?"),
                    )
                    raise _Rejected()
                if response.status != 200:
                    raise self._unavailable(f"{path.split('?')[0]} answered {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._unavailable(
                f"{path.split('?')[0]}: {type(exc).__name__}: {exc}".rstrip(": ")
            ) from None
        if not isinstance(body, dict):
            raise self._unavailable(f"{path.split('?')[0]} did not answer a JSON object")
        return body

    def _unavailable(self, cause: str) -> ServiceUnavailable:
        logger.error("identity backend DHIS2 %s unavailable: %s", self.api_url, cause)
        return ServiceUnavailable("The DHIS2 identity service is unavailable")

    def map_names(self, names: Iterable[str]) -> list[str]:
        """Exact-match mapping of configured DHIS2 names to the well-known groups (§9.1)."""
        out: list[str] = []
        for name in names:
            out.extend(self.mapping.get(name, [name]))
        return out

    def authorities(self, names: Iterable[str]) -> frozenset[str]:
        return authorities_from_groups(self.map_names(names), "", DHIS2_DEFAULTS)

    # -- IdentityProvider ------------------------------------------------------------------

    async def authenticate(self, login: str, password: str) -> Principal | None:
        if not usable_login(login) or not password:
            return None
        auth = basic_authorization(login, password)
        try:
            me = await self._get(f"/me?fields={ME_FIELDS}", auth)
            hierarchy = await self._get(
                f"/organisationUnits?withinUserHierarchy=true&paging=false&fields={UNIT_FIELDS}",
                auth,
            )
        except _Rejected:
            return None
        names = _names(me.get("organisationUnits"))
        names += _names(hierarchy.get("organisationUnits"))
        names += _names(me.get("userGroups"))
        username = _username(me) or login
        return Principal(
            login=username,
            user_id=f"username:{username}",
            full_name=username,
            authorities=self.authorities(dict.fromkeys(names)),
            default_group=None,
        )

    async def list_users(self) -> list[UserInfo]:
        try:
            listing = await self._get(
                "/users?paging=false&fields=id,username,userCredentials[username]", self.admin
            )
        except _Rejected:
            raise self._unavailable(
                f"the admin account {self.admin_user!r} was rejected: "
                "check SYNC_DHIS2_ADMIN_USER and SYNC_DHIS2_ADMIN_PASSWORD"
            ) from None
        slots = asyncio.Semaphore(CONCURRENCY)
        units: dict[str, asyncio.Task[list[str]]] = {}

        async def get(path: str) -> dict[str, Any]:
            async with slots:
                try:
                    return await self._get(path, self.admin)
                except _Rejected:
                    raise self._unavailable(f"the admin account may not read {path}") from None

        async def unit_names(unit_id: str) -> list[str]:
            body = await get(
                f"/organisationUnits/{quote(unit_id, safe='')}?includeDescendants=true"
                f"&paging=false&fields={UNIT_FIELDS}"
            )
            return _names(body.get("organisationUnits"))

        def unit(unit_id: str) -> Awaitable[list[str]]:
            if unit_id not in units:  # each org unit's subtree once per listing
                units[unit_id] = asyncio.ensure_future(unit_names(unit_id))
            return units[unit_id]

        async def one(user: dict[str, Any]) -> UserInfo | None:
            username = _username(user)
            user_id = user.get("id")
            if not username or not isinstance(user_id, str):
                return None
            path = f"/users/{quote(user_id, safe='')}"
            own_units, groups = await _all(
                get(
                    f"{path}/organisationUnits?withinUserHierarchy=true&paging=false"
                    f"&fields={UNIT_FIELDS}"
                ),
                get(f"{path}/userGroups?paging=false&fields={UNIT_FIELDS}"),
            )
            unit_list = own_units.get("organisationUnits")
            names = _names(unit_list)
            for subtree in await _all(*(unit(i) for i in _ids(unit_list))):
                names += subtree
            names += _names(groups.get("userGroups"))
            roles = self.authorities(dict.fromkeys(names))
            if not roles:
                return None
            return UserInfo(f"username:{username}", username, tuple(sorted(roles)))

        users = [u for u in listing.get("users") or [] if isinstance(u, dict)]
        try:
            results = await _all(*(one(u) for u in users))
        finally:
            for task in units.values():
                task.cancel()
        return [info for info in results if info is not None]

    async def ping(self) -> None:
        """DHIS2 answers and accepts the admin account."""
        try:
            await self._get("/me?fields=id", self.admin)
        except _Rejected:
            raise self._unavailable(
                f"the admin account {self.admin_user!r} was rejected: "
                "check SYNC_DHIS2_ADMIN_USER and SYNC_DHIS2_ADMIN_PASSWORD"
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
