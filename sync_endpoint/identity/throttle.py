"""Failed-login throttling: delays, then 429 with Retry-After (docs/identity.md, "Throttling").

Failures are counted per login name (case-folded: directories compare names without case) and
per client address. Only *distinct* wrong credentials count: the key is an HMAC of the login
and password under a key stored once in the database (created on first use), so a device that
keeps retrying one stale password (or many devices behind one NAT address doing so) never locks
anyone out, while every new guess of an attacker does. After `failures_before_delay` distinct
failures each further failure is answered after an increasing delay (capped at `MAX_DELAY`);
after `failures_before_block` the login name or the address gets 429 until `block_seconds` have
passed. A count is forgotten `block_seconds` after its last failure; a successful login clears
its login name's count.

The counts live in the database behind a `FailureStore` (storage/login_throttle.py), so every
replica sharing it sees the same counts and blocks. Times are epoch seconds from `clock`.
Checking costs one indexed read of at most two rows; anonymous requests cost nothing. Expired
counts are deleted as failures are recorded, so the store only holds recent failures.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sync_endpoint.errors import TooManyRequests

logger = logging.getLogger(__name__)

MAX_DELAY = 2.0  # seconds: a legitimate user who mistyped never waits longer than this
DELAY_STEP = 0.25  # seconds added per failure beyond failures_before_delay
KEY_NAME = "login_throttle_hmac"
SCOPE_MAX = 255  # longest scope a store keeps (sync_login_throttle.scope)


class FailureStore(Protocol):
    """Where the counts live, shared by every replica (storage.login_throttle.SqlLoginFailures)."""

    async def read(self, scopes: Sequence[str]) -> dict[str, tuple[float, float]]:
        """{scope: (last_failure, blocked_until)} for the scopes that have a row."""
        ...

    async def record(
        self,
        scopes: Sequence[str],
        tag: str,
        now: float,
        forget_before: float,
        cap: int,
        block_after: int,
        block_until: float,
    ) -> list[tuple[int, bool]]:
        """Count `tag` for each scope; (distinct failures, blocked now) per scope."""
        ...

    async def clear(self, scope: str) -> None: ...

    async def secret(self, name: str) -> bytes:
        """A random secret shared by every replica, created on first use."""
        ...


def _scope(kind: str, value: str) -> str:
    """The row key; over-long values (hostile logins) are replaced by their digest."""
    scope = f"{kind}:{value}"
    if len(scope) <= SCOPE_MAX:
        return scope
    return f"{kind}#{hashlib.sha256(value.encode()).hexdigest()}"


def login_scope(login: str) -> str:
    return _scope("login", login.casefold())


def address_scope(address: str) -> str:
    return _scope("addr", address)


class LoginThrottle:
    """Per-login and per-address failure counts, kept in a store every replica shares."""

    def __init__(
        self,
        store: FailureStore,
        failures_before_delay: int,
        failures_before_block: int,
        block_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.failures_before_delay = failures_before_delay
        self.failures_before_block = failures_before_block
        self.block_seconds = block_seconds
        self.clock = clock
        # Tags kept per count: enough to reach the block and the longest delay, no more.
        self._cap = max(
            failures_before_block, failures_before_delay + math.ceil(MAX_DELAY / DELAY_STEP), 1
        )
        self._key: bytes | None = None  # loaded (or created) on the first failure

    async def check(self, login: str, address: str) -> bool:
        """Raise TooManyRequests while the login name or the address is blocked.

        Returns whether the login name has failures counted (then a success must clear them).
        """
        now = self.clock()
        scopes = {login_scope(login): "login", address_scope(address): "address"}
        live = {
            scope: blocked_until
            for scope, (last_failure, blocked_until) in (
                await self.store.read(list(scopes))
            ).items()
            if now - last_failure < self.block_seconds  # else forgotten
        }
        for scope, what in scopes.items():  # the login name first
            blocked_until = live.get(scope)
            if blocked_until is not None and blocked_until > now:
                retry_after = math.ceil(blocked_until - now)
                raise TooManyRequests(
                    f"Too many failed logins for this {what}; retry in {retry_after} s",
                    retry_after=retry_after,
                )
        return login_scope(login) in live

    async def failed(self, login: str, password: str, address: str) -> float:
        """Record a failure; returns the delay (seconds) to wait before answering it."""
        now = self.clock()
        if self._key is None:
            self._key = await self.store.secret(KEY_NAME)
        tag = hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).hexdigest()
        # Always the login name first, then the address: row locks in one order.
        scopes = (("login", login.casefold()), ("address", address))
        results = await self.store.record(
            [login_scope(login), address_scope(address)],
            tag,
            now=now,
            forget_before=now - self.block_seconds,
            cap=self._cap,
            block_after=self.failures_before_block,
            block_until=now + self.block_seconds,
        )
        for (what, key), (failures, blocked) in zip(scopes, results, strict=True):
            if blocked:
                logger.warning(
                    "login throttling: %s %r blocked for %d s after %d failed logins "
                    "(login %r from address %s)",
                    what,
                    key,
                    self.block_seconds,
                    failures,
                    login,
                    address,
                )
        worst = max((failures for failures, _ in results), default=0)
        if self.failures_before_delay <= 0 or worst <= self.failures_before_delay:
            return 0.0
        return min(MAX_DELAY, DELAY_STEP * (worst - self.failures_before_delay))

    async def succeeded(self, login: str, address: str) -> None:
        """A correct login clears its login name's count (the address keeps its count)."""
        await self.store.clear(login_scope(login))
