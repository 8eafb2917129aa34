"""Concurrent pushes (SYNC_PROTOCOL §5.8, DECISIONS D6, §9 item 75).

Two server processes share one PostgreSQL database: the per-table advisory lock must serialise
their pushes across processes, so of two pushes carrying the current dataETag exactly one wins
and the other gets 409. In-process, ten simultaneous pushes behave the same on both backends,
and readers never observe half of a change set.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from sync_endpoint.storage.engines import lock_key
from tests.api.support import assert_error, pull_all, values_of
from tests.conftest import USERS, make_settings, write_directory
from tests.helpers import CENSUS_COLUMNS, ODK, Api, row
from tests.services.server import ServerProcess


class _Server(ServerProcess):
    """The real server; the suite's own SYNC_TEST_* variables are not server settings."""

    def env(self) -> dict[str, str]:
        env = super().env()
        for key in [k for k in env if k.startswith("SYNC_TEST_")]:
            del env[key]
        return env


class Remote:
    """A protocol client for a server process, as one user."""

    def __init__(self, session: aiohttp.ClientSession, base: str, user: str) -> None:
        self.session = session
        self.base = base
        token = base64.b64encode(f"{user}:{USERS[user][0]}".encode()).decode()
        self.headers = {**ODK, "Authorization": f"Basic {token}"}

    def url(self, url: str) -> str:
        """Server URLs name the server that made them; send them to this one."""
        if url.startswith("http"):
            url = "/" + url.split("/", 3)[3]
        return self.base + url

    async def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = gzip.compress(json.dumps(body).encode())
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        async with self.session.request(method, self.url(url), data=data, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None


@pytest.fixture
def two_servers(tmp_path: Path, postgres_database_url: str) -> Iterator[list[_Server]]:
    """Two `sync_endpoint serve` processes on one PostgreSQL database, each with the users."""
    servers: list[_Server] = []
    try:
        for name in ("a", "b"):
            data_dir = tmp_path / f"server-{name}"
            data_dir.mkdir()
            write_directory(make_settings(data_dir, postgres_database_url), USERS)
            server = _Server(data_dir, postgres_database_url)
            server.start()
            servers.append(server)
        yield servers
    finally:
        for server in servers:
            server.stop()


async def _setup(a: Remote, admin: Remote) -> tuple[dict[str, Any], dict[str, Any], str]:
    status, table = await admin.call(
        "PUT",
        "/odktables/default/tables/race",
        {"tableId": "race", "schemaETag": None, "orderedColumns": CENSUS_COLUMNS},
    )
    assert status == 200, table
    contested = row(name="start", age="0")
    status, result = await a.call("PUT", table["dataUri"], {"rows": [contested], "dataETag": None})
    assert status == 200, result
    contested["rowETag"] = result["rows"][0]["rowETag"]
    return table, contested, result["dataETag"]


@pytest.mark.postgres
async def test_two_processes_same_data_etag_exactly_one_wins(two_servers: list[_Server]) -> None:
    """Pushes carrying the current dataETag through two processes: one 200, one 409, each round."""
    rounds = 5
    async with aiohttp.ClientSession() as session:
        a = Remote(session, two_servers[0].url, "alice")
        b = Remote(session, two_servers[1].url, "bob")
        admin = Remote(session, two_servers[1].url, "admin")
        table, contested, data_etag = await _setup(a, admin)
        inserted: set[str] = set()
        for round_number in range(rounds):
            pushes = []
            for client, name in ((a, "alice"), (b, "bob")):
                rows = [row(contested["id"], contested["rowETag"], name=f"{name} {round_number}")]
                rows += [row(name=f"{name} extra {i}") for i in range(100)]
                pushes.append((client, rows))
            answers = await asyncio.gather(
                *(
                    c.call("PUT", table["dataUri"], {"rows": r, "dataETag": data_etag})
                    for c, r in pushes
                )
            )
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200, 409], answers
            winner = next(i for i, (status, _) in enumerate(answers) if status == 200)
            won = answers[winner][1]
            lost = answers[1 - winner][1]
            assert lost["type"] == "ETAG_MISMATCH"
            assert {o["outcome"] for o in won["rows"]} == {"SUCCESS"}
            inserted |= {o["id"] for o in won["rows"][1:]}

            loser_client, loser_rows = pushes[1 - winner]
            status, diff = await loser_client.call(
                "GET", f"{table['diffUri']}?data_etag={data_etag}"
            )
            assert status == 200
            assert diff["dataETag"] == won["dataETag"]
            assert len(diff["rows"]) == 101
            data_etag = won["dataETag"]
            contested["rowETag"] = won["rows"][0]["rowETag"]

        # The loser re-pulled the dataETag but pushes its stale row: IN_CONFLICT, server row.
        status, stale = await loser_client.call(
            "PUT", table["dataUri"], {"rows": loser_rows[:1], "dataETag": data_etag}
        )
        assert status == 200, stale
        conflict = stale["rows"][0]
        assert conflict["outcome"] == "IN_CONFLICT"
        assert conflict["rowETag"] == contested["rowETag"]
        assert values_of(conflict) == values_of(pushes[winner][1][0])
        assert stale["dataETag"] == data_etag

        for client in (a, b):
            status, listing = await client.call("GET", table["dataUri"])
            assert status == 200
            assert listing["dataETag"] == data_etag
            assert {r["id"] for r in listing["rows"]} == inserted | {contested["id"]}
            status, change_sets = await client.call("GET", table["diffUri"] + "/changeSets")
            assert len(change_sets["changeSets"]) == rounds + 1


@pytest.mark.postgres
async def test_two_processes_stale_row_etag_is_in_conflict(two_servers: list[_Server]) -> None:
    """Both push the same row at once; whoever comes second with its re-pulled dataETag and
    stale rowETag gets IN_CONFLICT carrying the first one's row."""
    async with aiohttp.ClientSession() as session:
        a = Remote(session, two_servers[0].url, "alice")
        b = Remote(session, two_servers[1].url, "bob")
        admin = Remote(session, two_servers[0].url, "admin")
        table, contested, data_etag = await _setup(a, admin)

        async def push_until_applied(client: Remote, name: str) -> dict[str, Any]:
            """A device's loop: push; on 409 re-pull the dataETag and push again."""
            current = data_etag
            body = row(contested["id"], contested["rowETag"], name=name)
            for _ in range(5):
                status, answer = await client.call(
                    "PUT", table["dataUri"], {"rows": [body], "dataETag": current}
                )
                if status == 200:
                    return dict(answer)
                assert status == 409, answer
                _, diff = await client.call("GET", f"{table['diffUri']}?data_etag={current}")
                current = diff["dataETag"]
            raise AssertionError("never applied")

        answers = await asyncio.gather(push_until_applied(a, "alice"), push_until_applied(b, "bob"))
        outcomes = sorted(answer["rows"][0]["outcome"] for answer in answers)
        assert outcomes == ["IN_CONFLICT", "SUCCESS"]
        winner = next(x for x in answers if x["rows"][0]["outcome"] == "SUCCESS")
        loser = next(x for x in answers if x["rows"][0]["outcome"] == "IN_CONFLICT")
        assert loser["rows"][0]["rowETag"] == winner["rows"][0]["rowETag"]
        assert loser["dataETag"] == winner["dataETag"]
        status, stored = await a.call("GET", f"{table['dataUri']}/{contested['id']}")
        assert status == 200
        assert stored["rowETag"] == winner["rows"][0]["rowETag"]
        assert values_of(loser["rows"][0]) == values_of(stored)


async def test_ten_simultaneous_pushes_with_one_data_etag(api: Api) -> None:
    """Ten pushes carrying the same dataETag at once: exactly one 200 and nine 409 (item 75)."""
    table = await api.create_table()
    first = await api.push(table, [row(name="seed")], None)
    batches = [[row(name=f"push {i} row {j}") for j in range(50)] for i in range(10)]
    alice = api.as_user("alice")
    responses = await asyncio.gather(
        *(
            alice.request(
                "PUT",
                table.data_uri,
                json_body={"rows": rows, "dataETag": first["dataETag"]},
                gzip_body=True,
            )
            for rows in batches
        )
    )
    statuses = [r.status for r in responses]
    assert sorted(statuses) == [200] + [409] * 9, statuses
    winner = statuses.index(200)
    won = await responses[winner].json()
    for response in responses:
        if response.status == 409:
            assert (await response.json())["type"] == "ETAG_MISMATCH"
    listing, _ = await pull_all(api, table.data_uri)
    assert {r["id"] for r in listing} == {first["rows"][0]["id"]} | {
        r["id"] for r in batches[winner]
    }
    assert (await api.table_resource(table))["dataETag"] == won["dataETag"]
    assert len((await api.get_json(table.diff_uri + "/changeSets"))["changeSets"]) == 2


async def test_readers_never_see_half_a_change_set(api: Api) -> None:
    """Reads during pushes report a dataETag whose change sets are complete (§5.8)."""
    table = await api.create_table()
    counts: dict[str | None, int] = {None: 0}
    observed: list[tuple[str | None, int]] = []
    done = asyncio.Event()

    async def writer() -> None:
        data_etag = None
        total = 0
        for i in range(6):
            result = await api.push(table, [row(name=f"{i}-{j}") for j in range(80)], data_etag)
            data_etag = result["dataETag"]
            total += 80
            counts[data_etag] = total
        done.set()

    async def reader() -> None:
        alice = api.as_user("alice")
        while not done.is_set():
            listing = await alice.get_json(table.data_uri)
            observed.append((listing["dataETag"], len(listing["rows"])))
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    assert observed
    for data_etag, count in observed:
        assert counts[data_etag] == count, (data_etag, count)


async def test_simultaneous_identical_creates_share_one_schema_etag(api: Api) -> None:
    """Ten identical table creations at once all answer 200 with one schemaETag (D4, D6)."""
    body = {"tableId": "census", "schemaETag": None, "orderedColumns": CENSUS_COLUMNS}
    responses = await asyncio.gather(
        *(
            api.request("PUT", api.app_url("/tables/census"), json_body=body, gzip_body=True)
            for _ in range(10)
        )
    )
    assert [r.status for r in responses] == [200] * 10
    etags = {(await r.json())["schemaETag"] for r in responses}
    assert len(etags) == 1
    listing = await api.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in listing["tables"]] == ["census"]
    acls = await api.get_json(api.app_url("/tables/census/acl"))
    assert len(acls["orderedAcls"]) == 1


async def test_push_racing_a_table_delete_leaves_no_orphans(api: Api) -> None:
    """A push and a delete of the same table at once: the push lands before the delete or is
    refused; a re-created table is always empty (§5.8, §5.12)."""
    for _ in range(3):
        table = await api.create_table("census")
        pushed = await api.push(table, [row(name="first")], None)
        push, delete = await asyncio.gather(
            api.request(
                "PUT",
                table.data_uri,
                json_body={
                    "rows": [row(name=f"r{i}") for i in range(100)],
                    "dataETag": pushed["dataETag"],
                },
                gzip_body=True,
            ),
            api.request("DELETE", table.definition_uri),
        )
        assert delete.status == 200, await delete.text()
        assert push.status in (200, 404, 412), await push.text()
        again = await api.create_table("census")
        assert (await api.get_json(again.data_uri))["rows"] == []
        assert (await api.get_json(again.diff_uri))["rows"] == []
        assert (await api.request("DELETE", again.definition_uri)).status == 200


@pytest.mark.parametrize("settings_overrides", [{"lock_timeout_seconds": 0.3}])
async def test_table_lock_timeout_is_503_and_reads_go_on(api: Api, database_url: str) -> None:
    """While another writer holds the table lock past the timeout, a push is 503 LOCK_TIMEOUT
    with Retry-After and writes nothing, and reads still answer (item 137, D6)."""
    table = await api.create_table("census")
    first = await api.push(table, [row(name="before")], None)
    with _table_lock_held(database_url, "default", "census"):
        response = await api.request(
            "PUT",
            table.data_uri,
            json_body={"rows": [row(name="blocked")], "dataETag": first["dataETag"]},
        )
        error = await assert_error(response, 503, "LOCK_TIMEOUT")
        assert error["message"]
        assert response.headers["Retry-After"].isdigit()
        listing = await api.get_json(table.data_uri)
        assert [values_of(r)["name"] for r in listing["rows"]] == ["before"]
        assert (await api.get_json(table.diff_uri))["dataETag"] == first["dataETag"]
    after = await api.push(table, [row(name="after")], first["dataETag"])
    assert after["rows"][0]["outcome"] == "SUCCESS"


@contextmanager
def _table_lock_held(database_url: str, app_id: str, table_id: str) -> Iterator[None]:
    """Hold what a push needs, from outside the server: the advisory lock (PostgreSQL) or the
    database's single write lock (SQLite)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(app_id, table_id),))
        yield
        connection.rollback()
