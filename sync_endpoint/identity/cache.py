"""A short-lived cache of successful credential checks (DECISIONS D13).

Devices send Basic credentials on every request; without a cache each one would hash a
password or bind to LDAP. Entries are keyed by login and hold an HMAC of the password under a
random per-process key, so the clear password is never kept. Failures are never cached and a
failed check drops the login's entry at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from sync_endpoint.core.models import Principal, UserInfo
from sync_endpoint.core.ports import IdentityProvider


class CachingIdentityProvider:
    """Wraps another provider; `ttl` seconds of 0 disables caching."""

    def __init__(
        self,
        inner: IdentityProvider,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[bytes, float, Principal]] = {}

    def _tag(self, login: str, password: str) -> bytes:
        return hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).digest()

    async def authenticate(self, login: str, password: str) -> Principal | None:
        tag = self._tag(login, password)
        entry = self._entries.get(login)
        now = self.clock()
        if entry is not None and entry[1] > now and hmac.compare_digest(entry[0], tag):
            return entry[2]
        principal = await self.inner.authenticate(login, password)
        if principal is None:
            self._entries.pop(login, None)
            return None
        if self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[login] = (tag, now + self.ttl, principal)
        return principal

    def invalidate(self, login: str | None = None) -> None:
        if login is None:
            self._entries.clear()
        else:
            self._entries.pop(login, None)

    async def list_users(self) -> list[UserInfo]:
        return await self.inner.list_users()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
