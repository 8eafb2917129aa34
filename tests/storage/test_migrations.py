"""Alembic migrations: repeatable, and in step with the declared schema on both databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from sync_endpoint.storage.engines import open_database
from sync_endpoint.storage.migrate import is_current, upgrade
from sync_endpoint.storage.schema import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_twice_and_no_drift(database_url: str) -> None:
    """Migrating a migrated database changes nothing, and the migrations match schema.py."""
    await upgrade(database_url)
    await upgrade(database_url)
    assert await is_current(database_url)
    db = open_database(database_url, lock_timeout=5)
    try:
        async with db.read_engine.connect() as conn:
            differences = await conn.run_sync(_diff)
    finally:
        await db.dispose()
    assert differences == []


def test_concurrent_migrations_do_not_collide(database_url: str, tmp_path: Path) -> None:
    """Two replicas running `migrate` at once both succeed (PostgreSQL: an advisory lock)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update({"SYNC_DATA_DIR": str(tmp_path), "SYNC_DATABASE_URL": database_url})
    command = [sys.executable, "-m", "sync_endpoint", "migrate"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert asyncio.run(is_current(database_url))
