"""Typed keys for application and request state."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sync_endpoint.core.models import Principal
from sync_endpoint.core.ports import FileStore, IdentityProvider, Storage
from sync_endpoint.identity.throttle import LoginThrottle
from sync_endpoint.settings import Settings


@dataclass(frozen=True)
class Services:
    """What handlers need, wired once in create_app (no getters, no globals)."""

    settings: Settings
    storage: Storage
    identity: IdentityProvider
    files: FileStore
    throttle: LoginThrottle


settings_key = web.AppKey("settings", Settings)
services_key = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]
