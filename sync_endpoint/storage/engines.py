"""Dialect differences in one place: connections, snapshots, the per-table lock (D6).

PostgreSQL: the table lock is a transaction-scoped advisory lock keyed on (appId, tableId),
so it holds across every replica sharing the database; waiting is bounded by `lock_timeout`.
SQLite: write transactions begin with BEGIN IMMEDIATE (one writer at a time, across processes
too) and wait at most `busy_timeout`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from sync_endpoint.errors import LockUnavailable, ServiceUnavailable

logger = logging.getLogger(__name__)


def lock_key(app_id: str, table_id: str) -> int:
    """A signed 64-bit advisory-lock key; a collision only serialises two tables."""
    digest = hashlib.blake2b(f"{app_id}\0{table_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class Database:
    """The engines of one database and how to open read snapshots and locked writes."""

    url: str
    read_engine: AsyncEngine
    write_engine: AsyncEngine
    lock_timeout: float

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction that sees one consistent state of the database."""
        async with self.read_engine.connect() as conn:
            if self.is_postgres:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                async with conn.begin():
                    yield conn
            except OperationalError as exc:
                raise _translate(exc, self) from exc

    @asynccontextmanager
    async def write(self, lock: tuple[str, str] | None = None) -> AsyncIterator[AsyncConnection]:
        """A write transaction; with `lock`, it first takes that table's lock (D6)."""
        try:
            async with self.write_engine.connect() as conn, conn.begin():
                if self.is_postgres:
                    ms = int(self.lock_timeout * 1000)
                    await conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                    if lock is not None:
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": lock_key(*lock)},
                        )
                yield conn
        except OperationalError as exc:
            raise _translate(exc, self) from exc

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def _translate(exc: DBAPIError, db: Database) -> Exception:
    """Lock waits that time out become 503 LOCK_TIMEOUT; lost connections 503 too."""
    orig: Any = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    message = str(orig).lower()
    if sqlstate == "55P03" or "database is locked" in message:
        return LockUnavailable(
            f"Please try again later. Timed out waiting for a table lock "
            f"after {db.lock_timeout:g} s"
        )
    if exc.connection_invalidated or sqlstate in ("57P01", "08006", "08001", "08003"):
        return ServiceUnavailable("The database is not reachable")
    return exc


def open_database(url: str, lock_timeout: float) -> Database:
    """Create engines for a SQLAlchemy URL (sqlite+aiosqlite or postgresql+psycopg)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        read = _sqlite_engine(url, "BEGIN", lock_timeout)
        write = _sqlite_engine(url, "BEGIN IMMEDIATE", lock_timeout)
        return Database(url, read, write, lock_timeout)
    engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return Database(url, engine, engine, lock_timeout)


def _sqlite_engine(url: str, begin: str, lock_timeout: float) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": lock_timeout})
    busy_ms = int(lock_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit one is lazy).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
