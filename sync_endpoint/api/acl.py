"""Table ACLs (§3.32): stored, listed and edited by administrators, not enforced (§5.17.3)."""

from __future__ import annotations

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import services, table_of
from sync_endpoint.api.params import page_request, read_json
from sync_endpoint.api.responses import empty_response, json_response
from sync_endpoint.api.serialization import acl_resource, parse_acl_role
from sync_endpoint.api.urls import Urls
from sync_endpoint.core.models import TableAcl, TableEntry
from sync_endpoint.core.paging import encode_cursor
from sync_endpoint.errors import BadRequestError, NotFoundError

_SCOPES = {"user": "USER", "group": "GROUP"}


def _scope(request: web.Request) -> tuple[str, str | None]:
    kind = request.match_info.get("scopeType")
    if kind is None:
        return "DEFAULT", None
    value = request.match_info["scopeValue"]
    if kind == "group" and value in ("", "null"):
        raise BadRequestError("Bad arguments: a group ACL needs a group id")
    return _SCOPES[kind], None if value == "null" else value


@requires(Need.ADMIN)
async def list_acls(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/acl[/user|/group]"""
    table = await table_of(request)
    kind = request.match_info.get("scopeType")
    scope_type = _SCOPES[kind] if kind else None
    query = f"acl|{table.pk}|{scope_type or ''}"
    page = await services(request).storage.list_acls(
        table, scope_type, page_request(request, query)
    )
    urls = Urls(request)
    acl_uri, table_uri = (
        urls.acl(table.app_id, table.table_id),
        urls.table(table.app_id, table.table_id),
    )
    cursor = request.query.get("cursor") or None
    body = {
        "orderedAcls": [acl_resource(a, acl_uri, table_uri) for a in page.items],
        "webSafeRefetchCursor": cursor,
        "webSafeBackwardCursor": None,
        "webSafeResumeCursor": (
            encode_cursor(query, page.last_key) if page.last_key is not None else cursor
        ),
        "hasMoreResults": page.has_more,
        "hasPriorResults": cursor is not None,
    }
    return json_response(request, body)


def _acl_response(request: web.Request, table: TableEntry, acl: TableAcl) -> web.Response:
    urls = Urls(request)
    acl_uri = urls.acl(table.app_id, table.table_id)
    return json_response(
        request, acl_resource(acl, acl_uri, urls.table(table.app_id, table.table_id))
    )


@requires(Need.ADMIN)
async def get_acl(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/acl/{default|user/{id}|group/{id}}"""
    table = await table_of(request)
    scope_type, scope_value = _scope(request)
    acl = await services(request).storage.get_acl(table, scope_type, scope_value)
    if acl is None:
        raise NotFoundError("No such ACL")  # REF: 500 (quirk 8.18)
    return _acl_response(request, table, acl)


@requires(Need.ADMIN)
async def put_acl(request: web.Request) -> web.Response:
    """PUT /odktables/{appId}/tables/{tableId}/acl/{default|user/{id}|group/{id}}"""
    table = await table_of(request)
    role = parse_acl_role(await read_json(request))
    scope_type, scope_value = _scope(request)
    acl = await services(request).storage.put_acl(table, TableAcl(scope_type, scope_value, role))
    return _acl_response(request, table, acl)


@requires(Need.ADMIN)
async def delete_acl(request: web.Request) -> web.Response:
    """DELETE /odktables/{appId}/tables/{tableId}/acl/{default|user/{id}|group/{id}}"""
    table = await table_of(request)
    scope_type, scope_value = _scope(request)
    await services(request).storage.delete_acl(table, scope_type, scope_value)
    return empty_response()
