"""The credential cache in front of an identity provider (DECISIONS D13)."""

from __future__ import annotations

import pytest

from sync_endpoint.core.models import Principal, UserInfo
from sync_endpoint.identity.cache import CachingIdentityProvider


def principal_of(login: str) -> Principal:
    return Principal(login, f"username:{login}", login, frozenset({"ROLE_USER"}))


class FakeProvider:
    """An identity provider with fixed passwords that counts its credential checks."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self.passwords = passwords
        self.checks: list[tuple[str, str]] = []
        self.pings = 0
        self.closed = False

    async def authenticate(self, login: str, password: str) -> Principal | None:
        self.checks.append((login, password))
        if self.passwords.get(login) == password:
            return principal_of(login)
        return None

    async def list_users(self) -> list[UserInfo]:
        return [UserInfo(f"username:{u}", u, ("ROLE_USER",)) for u in sorted(self.passwords)]

    async def ping(self) -> None:
        self.pings += 1

    async def close(self) -> None:
        self.closed = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def inner() -> FakeProvider:
    return FakeProvider({"alice": "alice-pw", "bob": "bob-pw"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(inner: FakeProvider, clock: FakeClock) -> CachingIdentityProvider:
    return CachingIdentityProvider(inner, ttl=60, clock=clock)


async def test_cached_success_skips_inner_within_ttl(
    cache: CachingIdentityProvider, inner: FakeProvider, clock: FakeClock
) -> None:
    """A successful check is answered from the cache, without the backend, within the TTL."""
    first = await cache.authenticate("alice", "alice-pw")
    clock.now += 59.9
    second = await cache.authenticate("alice", "alice-pw")
    assert first == second == principal_of("alice")
    assert inner.checks == [("alice", "alice-pw")]


async def test_entry_expires_after_ttl(
    cache: CachingIdentityProvider, inner: FakeProvider, clock: FakeClock
) -> None:
    """Once the TTL has passed, the backend is asked again."""
    await cache.authenticate("alice", "alice-pw")
    clock.now += 60
    assert await cache.authenticate("alice", "alice-pw") == principal_of("alice")
    assert len(inner.checks) == 2
    clock.now += 30
    await cache.authenticate("alice", "alice-pw")
    assert len(inner.checks) == 2  # the renewed entry counts from the second check


async def test_different_password_is_checked_and_failure_evicts(
    cache: CachingIdentityProvider, inner: FakeProvider
) -> None:
    """Another password goes to the backend; its failure drops the cached entry at once."""
    await cache.authenticate("alice", "alice-pw")
    assert await cache.authenticate("alice", "guess") is None
    assert inner.checks[-1] == ("alice", "guess")
    assert await cache.authenticate("alice", "alice-pw") == principal_of("alice")
    assert inner.checks == [("alice", "alice-pw"), ("alice", "guess"), ("alice", "alice-pw")]


async def test_password_changed_in_backend_is_seen_after_failure(
    cache: CachingIdentityProvider, inner: FakeProvider
) -> None:
    """After a password change, the new password is checked and the old one stops working."""
    await cache.authenticate("alice", "alice-pw")
    inner.passwords["alice"] = "new-pw"
    assert await cache.authenticate("alice", "new-pw") == principal_of("alice")
    assert await cache.authenticate("alice", "alice-pw") is None


async def test_failures_are_never_cached(
    cache: CachingIdentityProvider, inner: FakeProvider
) -> None:
    """Every wrong password is checked by the backend."""
    for _ in range(3):
        assert await cache.authenticate("alice", "wrong") is None
    assert await cache.authenticate("nobody", "x") is None
    assert len(inner.checks) == 4


async def test_logins_are_cached_separately(
    cache: CachingIdentityProvider, inner: FakeProvider
) -> None:
    """Each login has its own entry; one user's password never admits another."""
    await cache.authenticate("alice", "alice-pw")
    await cache.authenticate("bob", "bob-pw")
    assert await cache.authenticate("bob", "alice-pw") is None
    assert await cache.authenticate("alice", "alice-pw") == principal_of("alice")
    assert len(inner.checks) == 3


async def test_ttl_zero_disables_caching(inner: FakeProvider, clock: FakeClock) -> None:
    """With a TTL of 0 every check goes to the backend."""
    cache = CachingIdentityProvider(inner, ttl=0, clock=clock)
    for _ in range(3):
        assert await cache.authenticate("alice", "alice-pw") == principal_of("alice")
    assert len(inner.checks) == 3


async def test_invalidate(cache: CachingIdentityProvider, inner: FakeProvider) -> None:
    """invalidate(login) and invalidate() drop entries."""
    await cache.authenticate("alice", "alice-pw")
    await cache.authenticate("bob", "bob-pw")
    cache.invalidate("alice")
    await cache.authenticate("alice", "alice-pw")
    await cache.authenticate("bob", "bob-pw")
    assert len(inner.checks) == 3
    cache.invalidate()
    await cache.authenticate("bob", "bob-pw")
    assert len(inner.checks) == 4


async def test_cache_is_bounded(inner: FakeProvider, clock: FakeClock) -> None:
    """The cache never holds more than max_entries logins."""
    inner.passwords.update({f"u{i}": "pw" for i in range(10)})
    cache = CachingIdentityProvider(inner, ttl=60, clock=clock, max_entries=3)
    for i in range(10):
        await cache.authenticate(f"u{i}", "pw")
    assert len(cache._entries) <= 3
    assert await cache.authenticate("u9", "pw") == principal_of("u9")


async def test_other_calls_are_delegated(
    cache: CachingIdentityProvider, inner: FakeProvider
) -> None:
    """list_users, ping and close go to the wrapped provider."""
    assert [u.user_id for u in await cache.list_users()] == ["username:alice", "username:bob"]
    await cache.ping()
    await cache.close()
    assert inner.pings == 1
    assert inner.closed
