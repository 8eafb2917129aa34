"""Failed-login throttling (identity/throttle.py): delays, 429 with Retry-After, resets, on
SQLite and PostgreSQL; the same over HTTP through the real app (file backend, tests/conftest.py
users), and across two app instances sharing one database (replicas)."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from sync_endpoint.app import create_app
from sync_endpoint.errors import TooManyRequests
from sync_endpoint.identity.throttle import MAX_DELAY, LoginThrottle
from sync_endpoint.settings import Settings
from sync_endpoint.storage.engines import Database, open_database
from sync_endpoint.storage.login_throttle import SqlLoginFailures
from sync_endpoint.storage.schema import sync_login_failures, sync_login_throttle, sync_secrets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, lock_timeout=5)
    yield database
    await database.dispose()


@pytest.fixture
def throttle(db: Database, clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(SqlLoginFailures(db), 3, 6, 300, clock=clock)


async def fail(
    throttle: LoginThrottle, n: int, login: str = "alice", address: str = "10.0.0.1"
) -> list[float]:
    return [await throttle.failed(login, f"guess-{login}-{i}", address) for i in range(n)]


async def rows(db: Database, table: Any) -> int:
    async with db.snapshot() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_delays_grow_after_the_threshold_and_are_capped(
    db: Database, clock: FakeClock
) -> None:
    """No delay for the first N failures, then an increasing one, never above 2 s."""
    throttle = LoginThrottle(SqlLoginFailures(db), 2, 0, 300, clock=clock)  # never block
    delays = await fail(throttle, 30)
    assert delays[:2] == [0.0, 0.0]
    assert delays[2] > 0
    assert delays == sorted(delays)
    assert max(delays) == MAX_DELAY
    await throttle.check("alice", "10.0.0.1")


async def test_block_then_429_until_the_block_time_has_passed(
    throttle: LoginThrottle, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After M failures the login gets 429 with Retry-After; the block ends after its time."""
    with caplog.at_level(logging.WARNING, logger="sync_endpoint.identity.throttle"):
        await fail(throttle, 6)
    assert "'alice'" in caplog.text
    assert "10.0.0.1" in caplog.text
    with pytest.raises(TooManyRequests) as info:
        await throttle.check("alice", "10.9.9.9")  # blocked by name, from any address
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "300"
    with pytest.raises(TooManyRequests):
        await throttle.check("ALICE", "10.9.9.9")  # names are compared without case
    clock.now += 100
    with pytest.raises(TooManyRequests) as info:
        await throttle.check("alice", "10.9.9.9")
    assert info.value.headers["Retry-After"] == "200"
    clock.now += 200
    assert await throttle.check("alice", "10.9.9.9") is False  # over, and forgotten
    assert await throttle.failed("alice", "another guess", "10.9.9.9") == 0.0  # counting anew


async def test_address_is_blocked_for_many_logins(throttle: LoginThrottle) -> None:
    """One address guessing across many logins is blocked, for every login it tries."""
    for i in range(6):
        await throttle.failed(f"user{i}", "password1", "10.0.0.7")
    with pytest.raises(TooManyRequests):
        await throttle.check("somebody-else", "10.0.0.7")
    await throttle.check("somebody-else", "10.0.0.8")


async def test_repeating_one_wrong_password_does_not_block(throttle: LoginThrottle) -> None:
    """A device retrying one stale password counts once: it never locks anyone out."""
    for _ in range(50):
        assert await throttle.failed("alice", "old-password", "10.0.0.1") == 0.0
    await throttle.check("alice", "10.0.0.1")
    await throttle.check("bob", "10.0.0.1")


async def test_success_resets_the_login(throttle: LoginThrottle) -> None:
    """A correct login clears its name's count, so earlier mistakes are forgotten."""
    await fail(throttle, 5)
    assert await throttle.check("Alice", "10.0.0.2") is True  # a count to clear
    await throttle.succeeded("Alice", "10.0.0.1")
    assert await throttle.check("alice", "10.0.0.2") is False
    assert await fail(throttle, 3, address="10.0.0.2") == [0.0, 0.0, 0.0]
    await throttle.check("alice", "10.0.0.2")


async def test_counts_are_forgotten_and_expired_rows_deleted(
    throttle: LoginThrottle, db: Database, clock: FakeClock
) -> None:
    """A count is forgotten a block period after its last failure; its rows are deleted."""
    for i in range(50):
        await throttle.failed(f"user{i}", "x", f"10.0.{i}.1")
    assert await rows(db, sync_login_throttle) == 100
    clock.now += 299
    await fail(throttle, 2, login="late", address="10.9.9.9")  # refreshes only its counts
    assert await rows(db, sync_login_throttle) == 102
    clock.now += 1  # the first 50 users and addresses are now a block period old
    await throttle.failed("mallory", "y", "10.1.1.1")
    assert await rows(db, sync_login_throttle) == 4
    assert await rows(db, sync_login_failures) == 2 + 2 + 1 + 1


async def test_replicas_share_counts_and_the_hmac_key(db: Database, clock: FakeClock) -> None:
    """Two throttles on one database (two replicas): counts add up, one key tags for both."""
    one = LoginThrottle(SqlLoginFailures(db), 3, 6, 300, clock=clock)
    two = LoginThrottle(SqlLoginFailures(db), 3, 6, 300, clock=clock)
    for _ in range(10):  # the same stale password through both replicas still counts once
        await one.failed("alice", "stale", "10.0.0.1")
        await two.failed("alice", "stale", "10.0.0.2")
    assert await rows(db, sync_secrets) == 1
    await two.check("alice", "10.0.0.3")
    await fail(one, 3)
    await fail(two, 3, address="10.0.0.2")  # the same three guesses: no new count
    await two.check("alice", "10.0.0.3")
    await two.failed("alice", "one more guess", "10.0.0.2")
    await two.failed("alice", "yet another", "10.0.0.2")  # 1 + 3 + 2 distinct: blocked
    with pytest.raises(TooManyRequests):
        await one.check("alice", "10.0.0.3")
    with pytest.raises(TooManyRequests):
        await two.check("alice", "10.0.0.3")


async def test_long_logins_are_counted_by_digest(throttle: LoginThrottle) -> None:
    """A login too long for the key column is counted under its digest, still case-folded."""
    login = "X" * 1000
    for i in range(6):
        await throttle.failed(login, f"p{i}", f"10.2.0.{i}")
    with pytest.raises(TooManyRequests):
        await throttle.check(login.lower(), "10.2.1.1")


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "auth_failures_before_delay": 1,
        "auth_failures_before_block": 3,
        "auth_block_seconds": 300,
    }


def basic(login: str, password: str, address: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "X-OpenDataKit-Version": "2.0"}
    if address:
        headers["X-Forwarded-For"] = address  # the test client is a trusted proxy (127.0.0.1)
    return headers


PATH = "/odktables/default/privilegesInfo"


async def test_http_429_with_retry_after(client: TestClient[Any, Any]) -> None:
    """Three wrong passwords for alice, then 429 JSON with Retry-After, even with the right one."""
    for i in range(3):
        response = await client.get(PATH, headers=basic("alice", f"wrong-{i}", "198.51.100.1"))
        assert response.status == 401
    response = await client.get(PATH, headers=basic("alice", "alice-pw", "198.51.100.2"))
    assert response.status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 300
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["type"] == "BAD_REQUEST"
    assert "Too many failed logins" in body["message"]
    # Other users are not affected.
    response = await client.get(PATH, headers=basic("bob", "bob-pw", "198.51.100.2"))
    assert response.status == 200


async def test_http_address_block_uses_the_forwarded_client(client: TestClient[Any, Any]) -> None:
    """Guesses over several logins block the client address named by the trusted proxy only."""
    for login in ("alice", "bob", "viewer"):
        response = await client.get(PATH, headers=basic(login, "Winter2024!", "203.0.113.9"))
        assert response.status == 401
    response = await client.get(PATH, headers=basic("admin", "admin-pw", "203.0.113.9"))
    assert response.status == 429
    # Left-most entries can be forged by the client: the right-most untrusted one counts.
    response = await client.get(PATH, headers=basic("admin", "admin-pw", "203.0.113.9, 192.0.2.4"))
    assert response.status == 200


async def test_http_success_resets(client: TestClient[Any, Any]) -> None:
    """A successful login in between keeps a user who mistypes now and then from being blocked."""
    for i in range(6):
        response = await client.get(PATH, headers=basic("alice", f"typo-{i}", f"192.0.2.{i}"))
        assert response.status == 401
        response = await client.get(PATH, headers=basic("alice", "alice-pw", f"192.0.2.{i}"))
        assert response.status == 200


async def test_two_app_instances_share_one_database(
    aiohttp_client: Any, settings: Settings
) -> None:
    """Two servers on one database (replicas behind nginx): failures on one count on the
    other, and a block made on one is a 429 on the other."""
    one: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    two: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    response = await one.get(PATH, headers=basic("alice", "wrong-1", "198.51.100.1"))
    assert response.status == 401
    response = await two.get(PATH, headers=basic("alice", "wrong-2", "198.51.100.2"))
    assert response.status == 401
    # Two failures so far: the right password still works on either, and clears the count.
    response = await one.get(PATH, headers=basic("alice", "alice-pw", "198.51.100.3"))
    assert response.status == 200
    for i, client in enumerate((one, two, one)):
        response = await client.get(PATH, headers=basic("alice", f"again-{i}", f"192.0.2.{i}"))
        assert response.status == 401
    # Blocked after three failures spread over both replicas: 429 on each of them.
    for client in (one, two):
        response = await client.get(PATH, headers=basic("alice", "alice-pw", "198.51.100.9"))
        assert response.status == 429
        assert 0 < int(response.headers["Retry-After"]) <= 300
    # A block made on one replica only (by address) is a 429 on the other.
    for login in ("bob", "viewer", "admin"):
        response = await two.get(PATH, headers=basic(login, "Winter2024!", "203.0.113.50"))
        assert response.status == 401
    response = await one.get(PATH, headers=basic("bob", "bob-pw", "203.0.113.50"))
    assert response.status == 429
    response = await one.get(PATH, headers=basic("bob", "bob-pw", "203.0.113.51"))
    assert response.status == 200
