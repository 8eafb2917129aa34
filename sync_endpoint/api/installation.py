"""Device reports: `/{appId}/installationInfo` and `…/ref/{schemaETag}/installationStatus`."""

from __future__ import annotations

import json

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import installation_id, live_table, services
from sync_endpoint.api.params import read_json
from sync_endpoint.api.responses import empty_response
from sync_endpoint.appkeys import principal_of


async def _log(request: web.Request, kind: str, table_id: str | None) -> None:
    body = await read_json(request)  # any JSON value is accepted, but it must be JSON
    installation = installation_id(request)
    if installation:
        detail = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        await services(request).storage.log_interaction(
            installation, principal_of(request).login, kind, table_id, detail
        )


@requires(Need.SYNC)
async def post_installation_info(request: web.Request) -> web.Response:
    """POST /odktables/{appId}/installationInfo"""
    await _log(request, "DeviceInfo", None)
    return empty_response()


@requires(Need.SYNC)
async def post_installation_status(request: web.Request) -> web.Response:
    """POST /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/installationStatus"""
    table = await live_table(request)
    await _log(request, "SyncStatus", table.table_id)
    return empty_response()
