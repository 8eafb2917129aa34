"""Every method and path the server answers, in protocol order (SYNC_PROTOCOL §1.1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from sync_endpoint.api import (
    acl,
    apps,
    attachments,
    files,
    health,
    installation,
    rows,
    tables,
    users,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

APP = "/odktables/{appId}"
TABLE = APP + "/tables/{tableId}"
REF = TABLE + "/ref/{schemaETag}"

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/odktables", apps.list_app_names),
    ("GET", "/odktables/", apps.list_app_names),
    ("GET", APP + "/clientVersions", files.get_client_versions),
    ("GET", APP + "/privilegesInfo", users.get_privileges_info),
    ("GET", APP + "/usersInfo", users.get_users_info),
    ("POST", APP + "/installationInfo", installation.post_installation_info),
    ("GET", APP + "/manifest/{odkClientVersion}", files.get_app_manifest),
    ("GET", APP + "/manifest/{odkClientVersion}/", files.get_app_manifest),
    ("GET", APP + "/manifest/{odkClientVersion}/{tableId}", files.get_table_manifest),
    ("GET", APP + "/files/{odkClientVersion}/{filePath:.+}", files.get_file),
    ("POST", APP + "/files/{odkClientVersion}/{filePath:.+}", files.post_file),
    ("DELETE", APP + "/files/{odkClientVersion}/{filePath:.+}", files.delete_file),
    ("GET", APP + "/tables", tables.list_tables),
    ("GET", TABLE, tables.get_table),
    ("PUT", TABLE, tables.create_table),
    ("GET", TABLE + "/properties/{odkClientVersion}", files.get_properties),
    ("PUT", TABLE + "/properties/{odkClientVersion}", files.put_properties),
    ("GET", TABLE + "/acl", acl.list_acls),
    ("GET", TABLE + "/acl/{scopeType:user|group}", acl.list_acls),
    ("GET", TABLE + "/acl/default", acl.get_acl),
    ("PUT", TABLE + "/acl/default", acl.put_acl),
    ("DELETE", TABLE + "/acl/default", acl.delete_acl),
    ("GET", TABLE + "/acl/{scopeType:user|group}/{scopeValue}", acl.get_acl),
    ("PUT", TABLE + "/acl/{scopeType:user|group}/{scopeValue}", acl.put_acl),
    ("DELETE", TABLE + "/acl/{scopeType:user|group}/{scopeValue}", acl.delete_acl),
    ("GET", REF, tables.get_definition),
    ("DELETE", REF, tables.delete_table),
    ("GET", REF + "/rows", rows.list_rows),
    ("PUT", REF + "/rows", rows.put_rows),
    ("GET", REF + "/rows/{rowId}", rows.get_row),
    ("GET", REF + "/diff", rows.get_diff),
    ("GET", REF + "/diff/changeSets", rows.get_change_sets),
    ("GET", REF + "/diff/changeSets/{dataETag}", rows.get_change_set_rows),
    ("GET", REF + "/query/lastUpdateDate", rows.query_last_update_date),
    ("GET", REF + "/query/savepointTimestamp", rows.query_savepoint_timestamp),
    ("*", REF + "/attachments", attachments.refuse_bare),
    ("GET", REF + "/attachments/{rowId}/manifest", attachments.get_manifest),
    ("POST", REF + "/attachments/{rowId}/download", attachments.download),
    ("POST", REF + "/attachments/{rowId}/upload", attachments.upload),
    ("GET", REF + "/attachments/{rowId}/file/{filePath:.+}", attachments.get_file),
    ("POST", REF + "/attachments/{rowId}/file/{filePath:.+}", attachments.post_file),
    ("POST", REF + "/installationStatus", installation.post_installation_status),
    ("GET", "/health", health.health),
    ("GET", "/ready", health.ready),
]


def setup_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
