"""The application factory: middlewares in a fixed order, routes, resources in cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sync_endpoint.api.auth import auth_middleware
from sync_endpoint.api.middleware import add_odk_headers, error_middleware, request_log_middleware
from sync_endpoint.api.routes import setup_routes
from sync_endpoint.appkeys import Services, services_key, settings_key
from sync_endpoint.identity import open_identity_provider, open_login_throttle
from sync_endpoint.settings import Settings
from sync_endpoint.storage import open_file_store, open_storage
from sync_endpoint.storage.login_throttle import SqlLoginFailures


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # Order matters: the log sees the final status; errors (auth ones included) are
        # rendered by error_middleware, which wraps auth_middleware.
        middlewares=[request_log_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_json_bytes,
        # Request bodies are decoded by api/params.body_chunks, with limits and clean 400s.
        handler_args={"auto_decompress": False},
    )
    app[settings_key] = settings
    app.on_response_prepare.append(add_odk_headers)
    setup_routes(app)
    app.cleanup_ctx.append(_services)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    storage = open_storage(settings)
    identity = open_identity_provider(settings)
    files = open_file_store(settings, storage)
    app[services_key] = Services(
        settings=settings,
        storage=storage,
        identity=identity,
        files=files,
        throttle=open_login_throttle(settings, SqlLoginFailures(storage.db)),
    )
    try:
        yield
    finally:
        await identity.close()
        await storage.close()
