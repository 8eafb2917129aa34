"""Persistence: the only package that imports SQLAlchemy."""

from __future__ import annotations

from sync_endpoint.settings import Settings
from sync_endpoint.storage.engines import open_database
from sync_endpoint.storage.store import SqlStorage


def open_storage(settings: Settings) -> SqlStorage:
    return SqlStorage(open_database(settings.effective_database_url, settings.lock_timeout_seconds))
