"""The failed-login counts every replica shares (identity/throttle.py holds the policy).

Tables (migration 0003): sync_login_throttle, one row per scope ("login:<casefolded>" or
"addr:<ip>") with its last failure and block end (epoch seconds); sync_login_failures, the
distinct wrong-credential tags of each scope; sync_secrets, the shared HMAC key.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_endpoint.storage.engines import Database
from sync_endpoint.storage.schema import sync_login_failures, sync_login_throttle, sync_secrets

CLEANUP_BATCH = 1000  # expired scopes deleted per recorded failure, at most


class SqlLoginFailures:
    """Implements identity.throttle.FailureStore on the storage's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        return (postgresql if self.db.is_postgres else sqlite).insert(table)

    async def read(self, scopes: Sequence[str]) -> dict[str, tuple[float, float]]:
        """{scope: (last_failure, blocked_until)}: one indexed read of at most len(scopes) rows."""
        t = sync_login_throttle
        query = select(t.c.scope, t.c.last_failure, t.c.blocked_until).where(
            t.c.scope.in_(list(scopes))
        )
        async with self.db.snapshot() as conn:
            rows = (await conn.execute(query)).all()
        return {row.scope: (row.last_failure, row.blocked_until) for row in rows}

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
        """Add `tag` to each scope's count in one transaction, in the given order (row locks are
        taken in that order); counts whose last failure is at or before `forget_before` start
        anew. A scope reaching `block_after` (> 0) distinct tags while not blocked is blocked
        until `block_until`. Returns (distinct failures, blocked now) per scope; then deletes
        expired scopes."""
        results = []
        async with self.db.write() as conn:
            for scope in scopes:
                results.append(
                    await self._count(
                        conn, scope, tag, now, forget_before, cap, block_after, block_until
                    )
                )
            await self._delete_expired(conn, forget_before)
        return results

    async def _count(
        self,
        conn: AsyncConnection,
        scope: str,
        tag: str,
        now: float,
        forget_before: float,
        cap: int,
        block_after: int,
        block_until: float,
    ) -> tuple[int, bool]:
        t, f = sync_login_throttle, sync_login_failures
        # A count quiet for a whole block period is forgotten (its tags go by cascade).
        await conn.execute(delete(t).where(t.c.scope == scope, t.c.last_failure <= forget_before))
        upsert = self._insert(t).values(scope=scope, last_failure=now, blocked_until=0.0)
        upsert = upsert.on_conflict_do_update(
            index_elements=[t.c.scope], set_={"last_failure": upsert.excluded.last_failure}
        ).returning(t.c.blocked_until)
        blocked_until = (await conn.execute(upsert)).scalar_one()
        tags = set((await conn.execute(select(f.c.tag).where(f.c.scope == scope))).scalars())
        if tag not in tags and len(tags) < cap:
            added = await conn.execute(
                self._insert(f).values(scope=scope, tag=tag).on_conflict_do_nothing()
            )
            if added.rowcount:
                tags.add(tag)
        failures = len(tags)
        if block_after > 0 and failures >= block_after and blocked_until <= now:
            await conn.execute(
                update(t).where(t.c.scope == scope).values(blocked_until=block_until)
            )
            return failures, True
        return failures, False

    async def _delete_expired(self, conn: AsyncConnection, forget_before: float) -> None:
        """Bounded growth: delete counts quiet for a block period (skipping rows in use)."""
        t = sync_login_throttle
        expired = (
            select(t.c.scope)
            .where(t.c.last_failure <= forget_before)
            .limit(CLEANUP_BATCH)
            .with_for_update(skip_locked=True)  # PostgreSQL: never wait for another replica
        )
        await conn.execute(delete(t).where(t.c.scope.in_(expired.scalar_subquery())))

    async def clear(self, scope: str) -> None:
        """Forget a scope's count (and its tags)."""
        t = sync_login_throttle
        async with self.db.write() as conn:
            await conn.execute(delete(t).where(t.c.scope == scope))

    async def secret(self, name: str) -> bytes:
        """A random 32-byte secret stored once and shared by every replica; created on first use."""
        s = sync_secrets
        async with self.db.write() as conn:
            await conn.execute(
                self._insert(s)
                .values(name=name, value=secrets.token_bytes(32))
                .on_conflict_do_nothing()
            )
            value = (await conn.execute(select(s.c.value).where(s.c.name == name))).scalar_one()
        return bytes(value)
