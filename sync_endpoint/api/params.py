"""Typed parsing of query parameters and request bodies; every failure is a 400 or 413."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

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


_DECODED_CHUNK = 256 * 1024


def _decoder(request: web.Request) -> Any:
    """A zlib decoder for the request's Content-Encoding, or None for an identity body.

    The server decodes bodies itself (aiohttp's own decoding is off, see app.py): a corrupt or
    truncated gzip body then gets a clean 400 instead of a dropped connection, and a gzip bomb is
    expanded only as far as the size limit allows.
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, auto-detected
    raise UnsupportedMediaType(f"Unsupported Content-Encoding: {encoding}")


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in chunks, decoded exactly once (D10).

    A body that is not the gzip it claims to be, a truncated one, or a connection cut mid-body is
    a 400 — never a 500.
    """
    decoder = _decoder(request)
    try:
        async for chunk in request.content.iter_chunked(_DECODED_CHUNK):
            if decoder is None:
                yield chunk
                continue
            data = chunk
            while data:
                out = decoder.decompress(data, _DECODED_CHUNK)
                if out:
                    yield out
                data = decoder.unconsumed_tail
        if decoder is not None:
            tail = decoder.flush()
            if tail:
                yield tail
            if not decoder.eof:
                raise BadRequestError("Cannot decode the request body: truncated gzip stream")
    except (zlib.error, RequestPayloadError, HttpProcessingError) as exc:
        raise BadRequestError(f"Cannot decode the request body: {exc}") from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole decoded body, at most `limit` bytes (413 beyond: gzip bombs included)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
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
