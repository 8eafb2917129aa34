"""Building responses: compact UTF-8 JSON, automatic ETags on GET, gzip when accepted."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from sync_endpoint.errors import NotModified


def if_none_match(request: web.Request) -> str | None:
    """The whole first If-None-Match value, compared as an exact string (§2.6)."""
    value = request.headers.get("If-None-Match")
    if value is None:
        return None
    return value.strip()


def json_response(
    request: web.Request, body: Any, *, status: int = 200, etag: str | None = None
) -> web.Response:
    """Serialize an entity; GETs get an ETag (explicit or md5 of the body) and may 304."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers: dict[str, str] = {}
    if request.method == "GET":
        etag = etag or "md5:" + hashlib.md5(data).hexdigest()
        if if_none_match(request) == etag:
            raise NotModified(etag)
    if etag:
        headers["ETag"] = etag
    response = web.Response(
        body=data, status=status, content_type="application/json", headers=headers
    )
    if len(data) > 512:
        response.enable_compression()
        response.headers["Vary"] = "Accept-Encoding"
    return response


def empty_response(status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)
