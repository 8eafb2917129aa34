"""Failed-login throttling (identity/throttle.py): delays, 429 with Retry-After, resets, and
the same over HTTP through the real app (file backend, tests/conftest.py users)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sync_endpoint.errors import TooManyRequests
from sync_endpoint.identity.throttle import MAX_DELAY, LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(3, 6, 300, clock=clock)


def fail(
    throttle: LoginThrottle, n: int, login: str = "alice", address: str = "10.0.0.1"
) -> list[float]:
    return [throttle.failed(login, f"guess-{login}-{i}", address) for i in range(n)]


def test_delays_grow_after_the_threshold_and_are_capped(clock: FakeClock) -> None:
    """No delay for the first N failures, then an increasing one, never above 2 s."""
    throttle = LoginThrottle(2, 0, 300, clock=clock)  # never block
    delays = fail(throttle, 30)
    assert delays[:2] == [0.0, 0.0]
    assert delays[2] > 0
    assert delays == sorted(delays)
    assert max(delays) == MAX_DELAY


def test_block_then_429_until_the_block_time_has_passed(
    throttle: LoginThrottle, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After M failures the login gets 429 with Retry-After; the block ends after its time."""
    with caplog.at_level(logging.WARNING, logger="sync_endpoint.identity.throttle"):
        fail(throttle, 6)
    assert "'alice'" in caplog.text
    assert "10.0.0.1" in caplog.text
    with pytest.raises(TooManyRequests) as info:
        throttle.check("alice", "10.9.9.9")  # blocked by name, from any address
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "300"
    with pytest.raises(TooManyRequests):
        throttle.check("ALICE", "10.9.9.9")  # names are compared without case
    clock.now += 100
    with pytest.raises(TooManyRequests) as info:
        throttle.check("alice", "10.9.9.9")
    assert info.value.headers["Retry-After"] == "200"
    clock.now += 200
    throttle.check("alice", "10.9.9.9")  # over
    assert throttle.failed("alice", "another guess", "10.9.9.9") == 0.0  # counting starts anew


def test_address_is_blocked_for_many_logins(throttle: LoginThrottle) -> None:
    """One address guessing across many logins is blocked, for every login it tries."""
    for i in range(6):
        throttle.failed(f"user{i}", "password1", "10.0.0.7")
    with pytest.raises(TooManyRequests):
        throttle.check("somebody-else", "10.0.0.7")
    throttle.check("somebody-else", "10.0.0.8")


def test_repeating_one_wrong_password_does_not_block(throttle: LoginThrottle) -> None:
    """A device retrying one stale password counts once: it never locks anyone out."""
    for _ in range(50):
        assert throttle.failed("alice", "old-password", "10.0.0.1") == 0.0
    throttle.check("alice", "10.0.0.1")
    throttle.check("bob", "10.0.0.1")


def test_success_resets_the_login(throttle: LoginThrottle) -> None:
    """A correct login clears its name's count, so earlier mistakes are forgotten."""
    fail(throttle, 5)
    throttle.succeeded("Alice", "10.0.0.1")
    assert fail(throttle, 3, address="10.0.0.2") == [0.0, 0.0, 0.0]
    throttle.check("alice", "10.0.0.2")


def test_counts_are_bounded(clock: FakeClock) -> None:
    """The number of tracked names and addresses never exceeds max_entries."""
    throttle = LoginThrottle(3, 6, 300, clock=clock, max_entries=10)
    for i in range(100):
        throttle.failed(f"user{i}", "x", f"10.0.{i}.1")
    assert len(throttle._logins) <= 10
    assert len(throttle._addresses) <= 10


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
