"""Typed parsing of query parameters and request bodies; every failure is a 400 or 413."""

from __future__ import annotations

import zlib
from typing import Any

from aiohttp import web

from sync_endpoint.api.serialization import loads
from sync_endpoint.appkeys import services_key
from sync_endpoint.core.paging import PageRequest, decode_cursor
from sync_endpoint.errors import BadRequestError, PayloadTooLarge, UnsupportedMediaType


def fetch_limit(request: web.Request) -> int:
    """`fetchLimit`: default 2000, 1..maximum, anything else 400 (D8)."""
    settings = request.app[services_key].settings
    raw = request.query.get("fetchLimit", "").strip()
    if raw == "":
        return settings.fetch_limit_default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"Bad arguments: fetchLimit must be a number, got {raw!r}") from None
    if value <= 0:
        raise BadRequestError(f"Bad arguments: fetchLimit must be positive, got {value}")
    return min(value, settings.fetch_limit_max)


def page_request(request: web.Request, query: str) -> PageRequest:
    """fetchLimit + cursor of a paged listing; `query` binds cursors to this listing."""
    limit = fetch_limit(request)
    token = request.query.get("cursor", "").strip()
    if not token:
        return PageRequest(limit)
    key, backward = decode_cursor(query, token)
    return PageRequest(limit, key, backward)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The decoded request body (gzip/deflate undone once by aiohttp), at most `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except (zlib.error, web.HTTPException) as exc:
        raise BadRequestError(f"Cannot decode the request body: {exc}") from None
    return b"".join(chunks)


async def read_json(request: web.Request) -> Any:
    """A JSON request body: media type application/json (any parameters), charset utf-8."""
    content_type = request.headers.get("Content-Type", "")
    if content_type and request.content_type not in ("application/json", "text/plain"):
        raise UnsupportedMediaType(f"Expected application/json, got {request.content_type}")
    charset = request.charset
    if charset and charset.lower().replace("-", "") != "utf8":
        raise BadRequestError(f"Error parsing JSON request: unsupported charset {charset}")
    limit = request.app[services_key].settings.max_json_bytes
    return loads(await read_body(request, limit))
