"""Authentication (Basic only, after a challenge) and the URL-level role rules (§5.17.1, D2).

Each handler declares what it needs with `@requires(...)`; the middleware resolves the caller,
answers 401 with the Basic challenge when credentials are missing or wrong (or the anonymous
user lacks the role), 403 text/plain when a known user lacks it, then checks the appId (412).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from aiohttp import web

from sync_endpoint.api.middleware import Handler
from sync_endpoint.appkeys import PRINCIPAL, services_key
from sync_endpoint.core import roles
from sync_endpoint.core.models import Principal
from sync_endpoint.errors import (
    AppNameMismatch,
    AuthenticationRequired,
    BadRequestError,
    PermissionDenied,
)
from sync_endpoint.settings import Settings

ANONYMOUS_LOGIN = "anonymousUser"


class Need(Enum):
    PUBLIC = "public"  # health checks: no authentication at all
    USER = roles.USER  # the app name list
    AUTHENTICATED = "authenticated"  # privilegesInfo, usersInfo: ROLE_USER and not anonymous
    SYNC = roles.SYNC
    ADMIN = roles.ADMIN


F = TypeVar("F", bound=Callable[..., object])


def requires(need: Need) -> Callable[[F], F]:
    def mark(handler: F) -> F:
        handler.__odk_need__ = need  # type: ignore[attr-defined]
        return handler

    return mark


def need_of(handler: object) -> Need:
    need = getattr(handler, "__odk_need__", Need.PUBLIC)
    assert isinstance(need, Need)
    return need


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(login, password) from a Basic header; any other scheme counts as none (§2.1)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationRequired("Malformed Basic credentials") from None
    login, sep, password = decoded.partition(":")
    if not sep or not login:
        raise AuthenticationRequired("Malformed Basic credentials")
    return login, password


def anonymous(anonymous_sync: bool, anonymous_attachment_access: bool = False) -> Principal:
    return Principal(
        login=ANONYMOUS_LOGIN,
        user_id="anonymous",
        full_name="Anonymous Access",
        authorities=roles.anonymous_authorities(anonymous_sync, anonymous_attachment_access),
        anonymous=True,
    )


def anonymous_principal(settings: Settings) -> Principal:
    """The anonymous user with the authorities both anonymous settings give (§10)."""
    return anonymous(settings.anonymous_sync, settings.anonymous_attachment_access)


def _trusted(settings: Settings, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxies)


def client_address(request: web.Request, settings: Settings) -> str:
    """The caller's address: the peer, or, behind trusted proxies, the right-most address of
    X-Forwarded-For that is not a trusted proxy (entries further left can be forged)."""
    peer = request.remote or ""
    if not _trusted(settings, peer):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # garbage where a proxy should have written an address
        if not _trusted(settings, hop):
            return hop
    return peer


async def resolve_principal(request: web.Request) -> Principal:
    services = request.app[services_key]
    credentials = basic_credentials(request)
    if credentials is None:
        return anonymous_principal(services.settings)
    login, password = credentials
    throttle = services.throttle
    address = client_address(request, services.settings)
    # 429 while the login name or the address is blocked (one indexed read, shared by replicas)
    counted = await throttle.check(login, address)
    principal = await services.identity.authenticate(login, password)
    if principal is None:
        delay = await throttle.failed(login, password, address)
        if delay > 0:
            await asyncio.sleep(delay)
        raise AuthenticationRequired("Invalid user name or password")
    if counted:  # only a login with failures counted needs a write to clear them
        await throttle.succeeded(login, address)
    return principal


def authorize(principal: Principal, need: Need) -> None:
    if need is Need.PUBLIC:
        return
    if need is Need.AUTHENTICATED:
        allowed = not principal.anonymous and principal.has(roles.USER)
    else:
        allowed = principal.has(need.value)
    if allowed:
        return
    if principal.anonymous:
        raise AuthenticationRequired("Authentication required")
    raise PermissionDenied(f"Access denied: this requires {need.value}")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    need = need_of(request.match_info.handler)
    if need is Need.PUBLIC:
        return await handler(request)
    principal = await resolve_principal(request)
    authorize(principal, need)
    request[PRINCIPAL] = principal
    if "\x00" in request.path or any("\x00" in v for v in request.query.values()):
        # No id holds NUL, and PostgreSQL refuses it in a query parameter: 400, never 500.
        raise BadRequestError("Bad arguments: NUL character in the URL")
    app_id = request.match_info.get("appId")
    if app_id is not None and app_id not in request.app[services_key].settings.app_ids:
        raise AppNameMismatch(f"AppName ({app_id}) differs")
    return await handler(request)
