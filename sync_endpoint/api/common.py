"""Small helpers shared by the handlers of one request."""

from __future__ import annotations

from aiohttp import web

from sync_endpoint.appkeys import Services, principal_of, services_key
from sync_endpoint.core.access import RowAccessPolicy
from sync_endpoint.core.files import listed, manifest_etag_of
from sync_endpoint.core.models import TableEntry
from sync_endpoint.core.tables import require_schema, require_table


def services(request: web.Request) -> Services:
    return request.app[services_key]


def row_policy(request: web.Request) -> RowAccessPolicy:
    return RowAccessPolicy.for_principal(
        principal_of(request), services(request).settings.row_access
    )


async def table_of(request: web.Request) -> TableEntry:
    """The table named by `{appId}/tables/{tableId}` (404 if absent)."""
    info = request.match_info
    return await require_table(services(request).storage, info["appId"], info["tableId"])


async def live_table(request: web.Request) -> TableEntry:
    """The table of a `…/ref/{schemaETag}/…` URL (404 / 412 per §2.10)."""
    info = request.match_info
    return await require_schema(
        services(request).storage, info["appId"], info["tableId"], info["schemaETag"]
    )


def installation_id(request: web.Request) -> str | None:
    value = request.headers.get("X-OpenDataKit-Installation-Id", "").strip()
    return value or None


async def manifest_etag(request: web.Request, app_id: str, table_id: str | None) -> str:
    """The client-version-2 manifest ETag of the app level (None) or a table (quirk 8.8)."""
    files = await services(request).files.list_files(app_id, "2", table_id)
    return manifest_etag_of(listed(files))
