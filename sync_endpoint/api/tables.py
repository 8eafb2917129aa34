"""Tables: list, resource, create, definition, delete (SYNC_PROTOCOL §3.11–3.13, 3.16–3.17)."""

from __future__ import annotations

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import (
    installation_id,
    live_table,
    manifest_etag,
    services,
    table_of,
)
from sync_endpoint.api.params import page_request, read_json
from sync_endpoint.api.responses import empty_response, json_response
from sync_endpoint.api.serialization import (
    JsonDict,
    definition_resource,
    parse_table_definition,
    table_resource,
)
from sync_endpoint.api.urls import Urls
from sync_endpoint.appkeys import principal_of
from sync_endpoint.core import tables as table_rules
from sync_endpoint.core.files import listed, manifest_etag_of
from sync_endpoint.core.models import TableEntry
from sync_endpoint.core.paging import encode_cursor


def _resource(urls: Urls, table: TableEntry, manifest: str) -> JsonDict:
    app_id, table_id = table.app_id, table.table_id
    return table_resource(
        table,
        urls.table(app_id, table_id),
        urls.definition(app_id, table_id, table.schema_etag),
        urls.acl(app_id, table_id),
        manifest,
    )


async def _one_resource(request: web.Request, table: TableEntry) -> JsonDict:
    etag = await manifest_etag(request, table.app_id, table.table_id)
    return _resource(Urls(request), table, etag)


@requires(Need.SYNC)
async def list_tables(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables"""
    app_id = request.match_info["appId"]
    query = f"tables|{app_id}"
    page_req = page_request(request, query)
    page = await services(request).storage.list_tables(app_id, page_req)
    urls = Urls(request)
    items = sorted(page.items, key=lambda t: (t.table_id, t.schema_etag))
    files = await services(request).files.list_table_files(app_id, "2", [t.table_id for t in items])
    etags = {table_id: manifest_etag_of(listed(found)) for table_id, found in files.items()}
    cursor = request.query.get("cursor") or None
    body = {
        "tables": [_resource(urls, t, etags[t.table_id]) for t in items],
        "appLevelManifestETag": await manifest_etag(request, app_id, None),
        "webSafeRefetchCursor": cursor,
        "webSafeBackwardCursor": _cursor(query, page.first_key, True),
        "webSafeResumeCursor": _cursor(query, page.last_key, False) or cursor,
        "hasMoreResults": page.has_more,
        "hasPriorResults": cursor is not None,
    }
    return json_response(request, body)


def _cursor(query: str, key: int | str | None, backward: bool) -> str | None:
    return None if key is None else encode_cursor(query, key, backward)


@requires(Need.SYNC)
async def get_table(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}"""
    table = await table_of(request)
    return json_response(request, await _one_resource(request, table))


@requires(Need.ADMIN)
async def create_table(request: web.Request) -> web.Response:
    """PUT /odktables/{appId}/tables/{tableId} — 200, never 201: Android accepts only 200."""
    columns = parse_table_definition(await read_json(request))
    info = request.match_info
    table = await table_rules.create_table(
        services(request).storage,
        info["appId"],
        info["tableId"],
        columns,
        principal_of(request).login,
    )
    return json_response(request, await _one_resource(request, table))


@requires(Need.SYNC)
async def get_definition(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}"""
    table = await live_table(request)
    urls = Urls(request)
    body = definition_resource(
        table,
        urls.table(table.app_id, table.table_id),
        urls.definition(table.app_id, table.table_id, table.schema_etag),
    )
    return json_response(request, body)


@requires(Need.ADMIN)
async def delete_table(request: web.Request) -> web.Response:
    """DELETE /odktables/{appId}/tables/{tableId}/ref/{schemaETag}"""
    table = await live_table(request)
    svc = services(request)
    await svc.files.discard_refs(await svc.storage.delete_table(table))
    installation = installation_id(request)
    if installation:
        await svc.storage.log_interaction(
            installation, principal_of(request).login, "ChangeConfiguration", table.table_id, None
        )
    return empty_response()
