"""`/{appId}/privilegesInfo` and `/{appId}/usersInfo` (IDENTITY.md §12)."""

from __future__ import annotations

from aiohttp import web

from sync_endpoint.api.auth import Need, anonymous_principal, requires
from sync_endpoint.api.common import installation_id, services
from sync_endpoint.api.responses import json_response
from sync_endpoint.api.serialization import privileges_info, user_info
from sync_endpoint.appkeys import principal_of
from sync_endpoint.core.models import UserInfo
from sync_endpoint.core.roles import USER_LIST_ROLES


@requires(Need.AUTHENTICATED)
async def get_privileges_info(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/privilegesInfo"""
    principal = principal_of(request)
    installation = installation_id(request)
    if installation:
        await services(request).storage.log_interaction(
            installation, principal.login, "VerifyUser", None, None
        )
    return json_response(request, privileges_info(principal))


@requires(Need.AUTHENTICATED)
async def get_users_info(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/usersInfo"""
    principal = principal_of(request)
    svc = services(request)
    if USER_LIST_ROLES.isdisjoint(principal.authorities):
        me = UserInfo(principal.user_id, principal.full_name, tuple(sorted(principal.authorities)))
        return json_response(request, [user_info(me)])
    users = await svc.identity.list_users()
    anon = anonymous_principal(svc.settings)
    users.append(UserInfo(anon.user_id, anon.full_name, tuple(sorted(anon.authorities))))
    return json_response(request, [user_info(u) for u in users])
