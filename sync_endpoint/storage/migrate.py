"""Schema migrations with Alembic, run explicitly (`sync-endpoint migrate`), never implicitly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sync_endpoint.storage.engines import lock_key, open_database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade(connection: Connection, url: str) -> None:
    if connection.dialect.name == "postgresql":
        # Two replicas migrating at once wait for each other instead of racing.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key("", "migrate")})
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema; running it twice is harmless."""
    db = open_database(url, lock_timeout=60)
    try:
        async with db.write_engine.connect() as conn:
            await conn.run_sync(_upgrade, url)
            await conn.commit()
    finally:
        await db.dispose()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def is_current(url: str) -> bool:
    """True when the database is at the newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    db = open_database(url, lock_timeout=10)
    try:
        async with db.read_engine.connect() as conn:
            return await conn.run_sync(_current) == head
    finally:
        await db.dispose()


def run_upgrade(url: str) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    asyncio.run(upgrade(url))
