"""The per-table write lock (D6): held across connections and processes, bounded wait → 503."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import psycopg
import pytest

from sync_endpoint.storage.engines import lock_key
from tests.helpers import Api, row


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lock_timeout_seconds": 1.0}


def _hold_lock(database_url: str, app_id: str, table_id: str) -> Any:
    """Take the table's lock from outside the server: another replica mid-push."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        return conn
    conn_pg = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"))
    conn_pg.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(app_id, table_id),))
    return conn_pg


async def test_push_waits_then_answers_503_lock_timeout(api: Api, database_url: str) -> None:
    """A push that cannot get the table lock in time gets 503 LOCK_TIMEOUT with Retry-After."""
    table = await api.create_table()
    holder = _hold_lock(database_url, "default", table.table_id)
    try:
        started = asyncio.get_running_loop().time()
        response = await api.request(
            "PUT", table.data_uri, json_body={"rows": [row(name="x")], "dataETag": None}
        )
        waited = asyncio.get_running_loop().time() - started
    finally:
        holder.rollback()
        holder.close()
    assert response.status == 503, await response.text()
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["X-OpenDataKit-Version"] == "2.0"
    assert (await response.json())["type"] == "LOCK_TIMEOUT"
    assert 0.8 <= waited < 10
    resource = await api.table_resource(table)
    assert resource["dataETag"] is None  # nothing was written


async def test_reads_take_no_table_lock(api: Api, database_url: str) -> None:
    """Pulls, manifests and status reports still answer while another replica holds the lock."""
    table = await api.create_table()
    await api.push(table, [row(name="x")], None)
    holder = _hold_lock(database_url, "default", table.table_id)
    try:
        rows = await api.get_json(table.data_uri)
        diff = await api.get_json(table.diff_uri, params={"data_etag": "none"})
        manifest = await api.get_json(api.app_url(f"/manifest/2/{table.table_id}"))
        status = await api.request(
            "POST",
            table.definition_uri + "/installationStatus",
            json_body={"tableId": table.table_id},
        )
    finally:
        holder.rollback()
        holder.close()
    assert len(rows["rows"]) == 1
    assert len(diff["rows"]) == 1
    assert manifest == {"files": []}
    assert status.status == 200
