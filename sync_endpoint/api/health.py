"""Liveness and readiness probes for orchestrators; no authentication."""

from __future__ import annotations

import asyncio

from aiohttp import web

from sync_endpoint.api.common import services


async def health(request: web.Request) -> web.Response:
    """GET /health — the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """GET /ready — storage and the identity backend answer within 5 s."""
    svc = services(request)
    try:
        async with asyncio.timeout(5):
            await svc.storage.ping()
            await svc.identity.ping()
    except Exception as exc:  # any failure means "not ready", with the reason
        return web.json_response({"status": "unavailable", "reason": str(exc)}, status=503)
    return web.json_response({"status": "ok"})
