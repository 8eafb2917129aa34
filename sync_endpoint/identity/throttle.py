"""Failed-login throttling: delays, then 429 with Retry-After (docs/identity.md, "Throttling").

Failures are counted per login name (case-folded: directories compare names without case) and
per client address. Only *distinct* wrong credentials count: the key is an HMAC of the login
and password under a random per-process key, so a device that keeps retrying one stale password
(or many devices behind one NAT address doing so) never locks anyone out, while every new guess
of an attacker does. After `failures_before_delay` distinct failures each further failure is
answered after an increasing delay (capped at `MAX_DELAY`); after `failures_before_block` the
login name or the address gets 429 until `block_seconds` have passed. A count is forgotten
`block_seconds` after its last failure; a successful login clears its login name's count.
Counts live in this process only (each replica keeps its own) and their number is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sync_endpoint.errors import TooManyRequests

logger = logging.getLogger(__name__)

MAX_DELAY = 2.0  # seconds: a legitimate user who mistyped never waits longer than this
DELAY_STEP = 0.25  # seconds added per failure beyond failures_before_delay


@dataclass
class _Count:
    tags: set[bytes] = field(default_factory=set)  # distinct failed credentials
    last_failure: float = 0.0
    blocked_until: float = 0.0


class LoginThrottle:
    """Per-login and per-address failure counts; all methods run on the event loop."""

    def __init__(
        self,
        failures_before_delay: int,
        failures_before_block: int,
        block_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self.failures_before_delay = failures_before_delay
        self.failures_before_block = failures_before_block
        self.block_seconds = block_seconds
        self.clock = clock
        self.max_entries = max_entries
        # Tags kept per count: enough to reach the block and the longest delay, no more.
        self._cap = max(
            failures_before_block, failures_before_delay + math.ceil(MAX_DELAY / DELAY_STEP), 1
        )
        self._key = secrets.token_bytes(32)
        self._logins: dict[str, _Count] = {}
        self._addresses: dict[str, _Count] = {}

    @staticmethod
    def _login_key(login: str) -> str:
        return login.casefold()

    def _live(self, table: dict[str, _Count], key: str, now: float) -> _Count | None:
        count = table.get(key)
        if count is not None and now - count.last_failure >= self.block_seconds:
            del table[key]  # forgotten: quiet for a whole block period (a block has ended too)
            return None
        return count

    def check(self, login: str, address: str) -> None:
        """Raise TooManyRequests while the login name or the address is blocked."""
        now = self.clock()
        for what, table, key in (
            ("login", self._logins, self._login_key(login)),
            ("address", self._addresses, address),
        ):
            count = self._live(table, key, now)
            if count is not None and count.blocked_until > now:
                retry_after = math.ceil(count.blocked_until - now)
                raise TooManyRequests(
                    f"Too many failed logins for this {what}; retry in {retry_after} s",
                    retry_after=retry_after,
                )

    def failed(self, login: str, password: str, address: str) -> float:
        """Record a failure; returns the delay (seconds) to wait before answering it."""
        now = self.clock()
        tag = hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).digest()
        worst = 0
        for what, table, key in (
            ("login", self._logins, self._login_key(login)),
            ("address", self._addresses, address),
        ):
            count = self._live(table, key, now)
            if count is None:
                self._make_room(table, now)
                count = table[key] = _Count()
            count.last_failure = now
            if len(count.tags) < self._cap:
                count.tags.add(tag)
            failures = len(count.tags)
            worst = max(worst, failures)
            if (
                self.failures_before_block > 0
                and failures >= self.failures_before_block
                and count.blocked_until <= now
            ):
                count.blocked_until = now + self.block_seconds
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
        if self.failures_before_delay <= 0 or worst <= self.failures_before_delay:
            return 0.0
        return min(MAX_DELAY, DELAY_STEP * (worst - self.failures_before_delay))

    def succeeded(self, login: str, address: str) -> None:
        """A correct login clears its login name's count (the address keeps its count)."""
        self._logins.pop(self._login_key(login), None)

    def _make_room(self, table: dict[str, _Count], now: float) -> None:
        if len(table) < self.max_entries:
            return
        for key in [k for k, c in table.items() if now - c.last_failure >= self.block_seconds]:
            del table[key]
        while len(table) >= self.max_entries:
            del table[next(iter(table))]  # the oldest entry
