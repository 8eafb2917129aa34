"""Cross-cutting HTTP behaviour: request ids and access log, the ODK headers, error mapping.

Every response leaves with `X-OpenDataKit-Version: 2.0` and the CORS headers of the reference,
whatever produced it (Android treats a response without the header as a captive portal).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from sync_endpoint.appkeys import REQUEST_ID, services_key
from sync_endpoint.errors import (
    AuthenticationRequired,
    NotModified,
    PermissionDenied,
    SyncError,
)

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("sync_endpoint.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ODK_HEADERS = {
    "X-OpenDataKit-Version": "2.0",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Credentials": "true",
}


async def add_odk_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, streamed and error ones included."""
    for name, value in ODK_HEADERS.items():
        response.headers.setdefault(name, value)
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers.setdefault("X-Request-Id", request_id)


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id and write one access-log line when it ends."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        access_logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.rel_url.raw_path,
            status,
            (time.monotonic() - started) * 1000,
            extra={"request_id": request[REQUEST_ID], "remote": request.remote},
        )


def _error_json(status: int, code: str, message: str, headers: dict[str, str]) -> web.Response:
    body = json.dumps({"type": code, "message": message}, ensure_ascii=False).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def render_error(exc: SyncError, realm: str) -> web.Response:
    """One place decides how each error looks on the wire (§6, D2)."""
    if isinstance(exc, NotModified):
        return web.Response(status=304, headers=exc.headers)
    if isinstance(exc, AuthenticationRequired):
        # D2: text/plain, never JSON (the Java client parses any body as JSON).
        headers = {"WWW-Authenticate": f'Basic realm="{realm}"', **exc.headers}
        return web.Response(
            status=401, text=exc.message or "Authentication required", headers=headers
        )
    if isinstance(exc, PermissionDenied):
        return web.Response(status=403, text=exc.message or "Access denied", headers=exc.headers)
    return _error_json(exc.status, exc.code, exc.message, exc.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map SyncError and framework errors to the protocol's Error entity; never leak a 500."""
    realm = request.app[services_key].settings.realm
    try:
        return await handler(request)
    except SyncError as exc:
        if exc.status >= 500:
            logger.warning(
                "%s: %s", exc.code, exc.message, extra={"request_id": request.get(REQUEST_ID)}
            )
        return render_error(exc, realm)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "RESOURCE_NOT_FOUND", 405: "BAD_REQUEST", 413: "BAD_REQUEST"}.get(
            exc.status, "BAD_REQUEST" if exc.status < 500 else "INTERNAL_ERROR"
        )
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return _error_json(exc.status, code, exc.reason or exc.text or "", headers)
    except Exception:
        logger.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)})
        return _error_json(500, "INTERNAL_ERROR", "Internal server error", {})
