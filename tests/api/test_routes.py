"""The route table, pinned: a changed path or method is a deliberate change of this list."""

from __future__ import annotations

from sync_endpoint.api.auth import Need, need_of
from sync_endpoint.api.routes import ROUTES

A = "/odktables/{appId}"
T = A + "/tables/{tableId}"
R = T + "/ref/{schemaETag}"

EXPECTED = [
    ("GET", "/odktables", Need.USER),
    ("GET", "/odktables/", Need.USER),
    ("GET", A + "/clientVersions", Need.SYNC),
    ("GET", A + "/privilegesInfo", Need.AUTHENTICATED),
    ("GET", A + "/usersInfo", Need.AUTHENTICATED),
    ("POST", A + "/installationInfo", Need.SYNC),
    ("GET", A + "/manifest/{odkClientVersion}", Need.SYNC),
    ("GET", A + "/manifest/{odkClientVersion}/", Need.SYNC),
    ("GET", A + "/manifest/{odkClientVersion}/{tableId}", Need.SYNC),
    ("GET", A + "/files/{odkClientVersion}/{filePath:.+}", Need.SYNC),
    ("POST", A + "/files/{odkClientVersion}/{filePath:.+}", Need.ADMIN),
    ("DELETE", A + "/files/{odkClientVersion}/{filePath:.+}", Need.ADMIN),
    ("GET", A + "/tables", Need.SYNC),
    ("GET", T, Need.SYNC),
    ("PUT", T, Need.ADMIN),
    ("GET", T + "/properties/{odkClientVersion}", Need.SYNC),
    ("PUT", T + "/properties/{odkClientVersion}", Need.ADMIN),
    ("GET", T + "/acl", Need.ADMIN),
    ("GET", T + "/acl/{scopeType:user|group}", Need.ADMIN),
    ("GET", T + "/acl/default", Need.ADMIN),
    ("PUT", T + "/acl/default", Need.ADMIN),
    ("DELETE", T + "/acl/default", Need.ADMIN),
    ("GET", T + "/acl/{scopeType:user|group}/{scopeValue}", Need.ADMIN),
    ("PUT", T + "/acl/{scopeType:user|group}/{scopeValue}", Need.ADMIN),
    ("DELETE", T + "/acl/{scopeType:user|group}/{scopeValue}", Need.ADMIN),
    ("GET", R, Need.SYNC),
    ("DELETE", R, Need.ADMIN),
    ("GET", R + "/rows", Need.SYNC),
    ("PUT", R + "/rows", Need.SYNC),
    ("GET", R + "/rows/{rowId}", Need.SYNC),
    ("GET", R + "/diff", Need.SYNC),
    ("GET", R + "/diff/changeSets", Need.SYNC),
    ("GET", R + "/diff/changeSets/{dataETag}", Need.SYNC),
    ("GET", R + "/query/lastUpdateDate", Need.SYNC),
    ("GET", R + "/query/savepointTimestamp", Need.SYNC),
    ("*", R + "/attachments", Need.ADMIN),
    ("GET", R + "/attachments/{rowId}/manifest", Need.SYNC),
    ("POST", R + "/attachments/{rowId}/download", Need.SYNC),
    ("POST", R + "/attachments/{rowId}/upload", Need.SYNC),
    ("GET", R + "/attachments/{rowId}/file/{filePath:.+}", Need.SYNC),
    ("POST", R + "/attachments/{rowId}/file/{filePath:.+}", Need.SYNC),
    ("POST", R + "/installationStatus", Need.SYNC),
    ("GET", "/health", Need.PUBLIC),
    ("GET", "/ready", Need.PUBLIC),
]


def test_every_route_and_the_role_it_needs() -> None:
    """Routes and their URL-level roles match SYNC_PROTOCOL §1.1 and §5.17.1, in order."""
    assert [(method, path, need_of(handler)) for method, path, handler in ROUTES] == EXPECTED
