"""`/odktables/` (app names) and `/{appId}/clientVersions`."""

from __future__ import annotations

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import services
from sync_endpoint.api.responses import json_response


@requires(Need.USER)
async def list_app_names(request: web.Request) -> web.Response:
    """GET /odktables/"""
    return json_response(request, list(services(request).settings.app_ids))
