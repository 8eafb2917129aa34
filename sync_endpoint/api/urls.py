"""Absolute URLs in responses, as the client sees the server (SYNC_PROTOCOL §2.7, D15)."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote

from aiohttp import web

from sync_endpoint.appkeys import services_key

_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


def segment(value: str) -> str:
    """Percent-encode one path segment; ':' stays literal (uuid:… ids)."""
    return quote(value, safe=_SEGMENT_SAFE)


def path(value: str) -> str:
    """Percent-encode a multi-segment file path, keeping its slashes."""
    return "/".join(segment(part) for part in value.split("/"))


def _from_trusted_proxy(request: web.Request) -> bool:
    settings = request.app[services_key].settings
    if not request.remote:
        return False
    try:
        address = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_proxies)


def base_url(request: web.Request) -> str:
    """`{scheme}://{host[:port]}` from settings, or from the request and trusted proxy headers."""
    settings = request.app[services_key].settings
    if settings.public_base_url:
        return settings.public_base_url
    scheme, host = request.scheme, request.host
    if _from_trusted_proxy(request):
        forwarded_proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if forwarded_proto in ("http", "https"):
            scheme = forwarded_proto
        if forwarded_host:
            host = forwarded_host
    return f"{scheme}://{host}"


class Urls:
    """URL templates of one request's view of the server."""

    def __init__(self, request: web.Request) -> None:
        self.root = base_url(request) + "/odktables"

    def app(self, app_id: str) -> str:
        return f"{self.root}/{segment(app_id)}"

    def table(self, app_id: str, table_id: str) -> str:
        return f"{self.app(app_id)}/tables/{segment(table_id)}"

    def definition(self, app_id: str, table_id: str, schema_etag: str) -> str:
        return f"{self.table(app_id, table_id)}/ref/{segment(schema_etag)}"

    def acl(self, app_id: str, table_id: str) -> str:
        return f"{self.table(app_id, table_id)}/acl"

    def file(self, app_id: str, version: str, file_path: str) -> str:
        return f"{self.app(app_id)}/files/{segment(version)}/{path(file_path)}"
