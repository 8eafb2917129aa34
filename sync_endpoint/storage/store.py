"""SQL implementation of the Storage port (SQLAlchemy Core; PostgreSQL and SQLite)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_endpoint.core.models import Column, Page, RowWrite, StoredRow, TableAcl, TableEntry
from sync_endpoint.core.paging import PageRequest
from sync_endpoint.errors import TableNotFound
from sync_endpoint.storage.codec import (
    columns_to_json,
    row_from_record,
    row_to_record,
    table_from_record,
)
from sync_endpoint.storage.engines import Database
from sync_endpoint.storage.schema import (
    sync_attachments,
    sync_change_sets,
    sync_files,
    sync_installation_log,
    sync_revisions,
    sync_rows,
    sync_table_acls,
    sync_tables,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


async def _paged(
    conn: AsyncConnection,
    stmt: Select[Any],
    key: ColumnElement[Any],
    page: PageRequest,
) -> tuple[list[Any], bool]:
    """Keyset paging on a unique `key`: returns (records in ascending key order, has_more)."""
    if page.key is not None:
        stmt = stmt.where(key < page.key if page.backward else key > page.key)
    stmt = stmt.order_by(key.desc() if page.backward else key.asc()).limit(page.limit + 1)
    records = list((await conn.execute(stmt)).mappings())
    has_more = len(records) > page.limit
    records = records[: page.limit]
    if page.backward:
        records.reverse()
    return records, has_more


def _page_of(records: list[Any], has_more: bool, key: str, items: list[T]) -> Page[T]:
    return Page(
        items=items,
        has_more=has_more,
        first_key=records[0][key] if records else None,
        last_key=records[-1][key] if records else None,
    )


class SqlRowWriter:
    """The RowWriter of one push: a locked write transaction on one table."""

    def __init__(self, conn: AsyncConnection, table: TableEntry) -> None:
        self.conn = conn
        self.table = table

    async def load(self, row_ids: Sequence[str]) -> dict[str, StoredRow]:
        found: dict[str, StoredRow] = {}
        unique = list(dict.fromkeys(row_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            result = await self.conn.execute(
                select(sync_rows).where(
                    sync_rows.c.table_pk == self.table.pk, sync_rows.c.row_id.in_(chunk)
                )
            )
            for record in result.mappings():
                found[record["row_id"]] = row_from_record(record)
        return found

    async def apply(self, writes: Sequence[RowWrite], change_set: str) -> None:
        if not writes:
            return
        now = _now()
        # One multi-row INSERT … RETURNING for the whole push: the log positions come back in
        # parameter order, so each row learns the sequence value of its revision.
        result = await self.conn.execute(
            insert(sync_revisions).returning(sync_revisions.c.seq, sort_by_parameter_order=True),
            [
                {
                    **row_to_record(write.row),
                    "table_pk": self.table.pk,
                    "row_id": write.row.row_id,
                    "previous_row_etag": write.previous_row_etag,
                    "recorded_at": now,
                }
                for write in writes
            ],
        )
        seqs = [int(seq) for seq in result.scalars()]
        first_seq, last_seq = seqs[0], seqs[-1]
        latest: dict[str, tuple[RowWrite, int, int | None]] = {}  # row id → write, seq, first
        for write, seq in zip(writes, seqs, strict=True):
            earlier = latest.get(write.row.row_id)
            inserted_at = earlier[2] if earlier is not None else None
            if write.is_insert and inserted_at is None:
                inserted_at = seq
            latest[write.row.row_id] = (write, seq, inserted_at)
        inserts = [
            {
                **row_to_record(write.row),
                "table_pk": self.table.pk,
                "row_id": write.row.row_id,
                "first_seq": inserted_at,
                "last_seq": seq,
            }
            for write, seq, inserted_at in latest.values()
            if inserted_at is not None
        ]
        updates = [
            {**row_to_record(write.row), "b_row_id": write.row.row_id, "last_seq": seq}
            for write, seq, inserted_at in latest.values()
            if inserted_at is None
        ]
        if inserts:
            await self.conn.execute(insert(sync_rows), inserts)
        if updates:
            await self.conn.execute(
                update(sync_rows).where(
                    sync_rows.c.table_pk == self.table.pk,
                    sync_rows.c.row_id == bindparam("b_row_id"),
                ),
                updates,
            )
        assert first_seq is not None
        await self.conn.execute(
            insert(sync_change_sets),
            {
                "table_pk": self.table.pk,
                "data_etag": change_set,
                "first_seq": first_seq,
                "last_seq": last_seq,
                "created_at": now,
            },
        )
        await self.conn.execute(
            update(sync_tables)
            .where(sync_tables.c.pk == self.table.pk)
            .values(data_etag=change_set)
        )


class SqlStorage:
    """Storage on one database; see core/ports.py for the contract of each method."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        async with self.db.snapshot() as conn:
            await conn.execute(select(1))

    async def close(self) -> None:
        await self.db.dispose()

    # -- tables ----------------------------------------------------------------------------

    async def list_tables(self, app_id: str, page: PageRequest) -> Page[TableEntry]:
        async with self.db.snapshot() as conn:
            records, has_more = await _paged(
                conn,
                select(sync_tables).where(sync_tables.c.app_id == app_id),
                sync_tables.c.pk,
                page,
            )
        return _page_of(records, has_more, "pk", [table_from_record(r) for r in records])

    async def get_table(self, app_id: str, table_id: str) -> TableEntry | None:
        async with self.db.snapshot() as conn:
            return await self._get_table(conn, app_id, table_id)

    @staticmethod
    async def _get_table(conn: AsyncConnection, app_id: str, table_id: str) -> TableEntry | None:
        record = (
            (
                await conn.execute(
                    select(sync_tables).where(
                        sync_tables.c.app_id == app_id, sync_tables.c.table_id == table_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return table_from_record(record) if record else None

    async def create_table(
        self, app_id: str, table_id: str, columns: Sequence[Column], creator: str
    ) -> tuple[TableEntry, bool]:
        schema_etag = f"uuid:{uuid.uuid4()}"
        try:
            async with self.db.write(lock=(app_id, table_id)) as conn:
                existing = await self._get_table(conn, app_id, table_id)
                if existing is not None:
                    return existing, False
                result = await conn.execute(
                    insert(sync_tables).returning(sync_tables.c.pk),
                    {
                        "app_id": app_id,
                        "table_id": table_id,
                        "schema_etag": schema_etag,
                        "data_etag": None,
                        "columns_json": columns_to_json(columns),
                        "created_at": _now(),
                    },
                )
                pk = int(result.scalar_one())
                await conn.execute(
                    insert(sync_table_acls),
                    {"table_pk": pk, "scope_type": "USER", "scope_value": creator, "role": "OWNER"},
                )
        except IntegrityError:
            # The table lock makes this unreachable; should another writer still win the unique
            # (app_id, table_id) race, its table is the answer, as for any repeated create.
            winner = await self.get_table(app_id, table_id)
            if winner is None:
                raise
            return winner, False
        return TableEntry(pk, app_id, table_id, schema_etag, None, tuple(columns)), True

    async def delete_table(self, table: TableEntry) -> list[str]:
        refs: list[str] = []
        async with self.db.write(lock=(table.app_id, table.table_id)) as conn:
            files_where = [
                sync_files.c.app_id == table.app_id,
                sync_files.c.table_id == table.table_id,
            ]
            refs += [
                r[0] for r in await conn.execute(select(sync_files.c.blob_ref).where(*files_where))
            ]
            await conn.execute(delete(sync_files).where(*files_where))
            attachments = sync_attachments.c.table_pk == table.pk
            refs += [
                r[0]
                for r in await conn.execute(select(sync_attachments.c.blob_ref).where(attachments))
            ]
            children = (
                sync_attachments,
                sync_revisions,
                sync_rows,
                sync_change_sets,
                sync_table_acls,
            )
            for child in children:
                await conn.execute(delete(child).where(child.c.table_pk == table.pk))
            await conn.execute(delete(sync_tables).where(sync_tables.c.pk == table.pk))
        return refs

    # -- rows ------------------------------------------------------------------------------

    @asynccontextmanager
    async def row_writer(self, table: TableEntry) -> AsyncIterator[SqlRowWriter]:
        async with self.db.write(lock=(table.app_id, table.table_id)) as conn:
            current = await self._get_table(conn, table.app_id, table.table_id)
            if current is None or current.pk != table.pk:
                raise TableNotFound(f"Table not found\n{table.table_id}")
            yield SqlRowWriter(conn, current)

    async def _data_etag(self, conn: AsyncConnection, table: TableEntry) -> str | None:
        record = (
            (
                await conn.execute(
                    select(sync_tables.c.data_etag).where(sync_tables.c.pk == table.pk)
                )
            )
            .mappings()
            .first()
        )
        if record is None:
            raise TableNotFound(f"Table not found\n{table.table_id}")
        value: str | None = record["data_etag"]
        return value

    async def read_rows(
        self, table: TableEntry, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]:
        async with self.db.snapshot() as conn:
            data_etag = await self._data_etag(conn, table)
            records, has_more = await _paged(
                conn,
                select(sync_rows).where(
                    sync_rows.c.table_pk == table.pk, sync_rows.c.deleted.is_(False)
                ),
                sync_rows.c.first_seq,
                page,
            )
        rows = [row_from_record(r) for r in records]
        return data_etag, _page_of(records, has_more, "first_seq", rows)

    async def get_row(self, table: TableEntry, row_id: str) -> StoredRow | None:
        async with self.db.snapshot() as conn:
            record = (
                (
                    await conn.execute(
                        select(sync_rows).where(
                            sync_rows.c.table_pk == table.pk, sync_rows.c.row_id == row_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return row_from_record(record) if record else None

    async def _anchor(
        self, conn: AsyncConnection, table: TableEntry, change_set: str
    ) -> int | None:
        record = (
            (
                await conn.execute(
                    select(sync_change_sets.c.last_seq).where(
                        sync_change_sets.c.table_pk == table.pk,
                        sync_change_sets.c.data_etag == change_set,
                    )
                )
            )
            .mappings()
            .first()
        )
        return int(record["last_seq"]) if record else None

    async def diff(
        self, table: TableEntry, since: str | None, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]:
        async with self.db.snapshot() as conn:
            data_etag = await self._data_etag(conn, table)
            anchor = await self._anchor(conn, table, since) if since else None
            stmt = select(sync_rows).where(sync_rows.c.table_pk == table.pk)
            if anchor is not None:
                stmt = stmt.where(sync_rows.c.last_seq > anchor)
            records, has_more = await _paged(conn, stmt, sync_rows.c.last_seq, page)
        rows = [row_from_record(r) for r in records]
        return data_etag, _page_of(records, has_more, "last_seq", rows)

    async def change_sets(
        self, table: TableEntry, since: str | None, since_sequence: int | None
    ) -> tuple[list[str], str | None, int]:
        async with self.db.snapshot() as conn:
            data_etag = await self._data_etag(conn, table)
            fresh = (await conn.execute(select(func.max(sync_revisions.c.seq)))).scalar_one()
            anchor = await self._anchor(conn, table, since) if since else None
            floor = max(anchor or 0, since_sequence or 0)
            result = await conn.execute(
                select(sync_change_sets.c.data_etag)
                .where(
                    sync_change_sets.c.table_pk == table.pk,
                    sync_change_sets.c.last_seq > floor,
                )
                .order_by(sync_change_sets.c.data_etag)
            )
            ids = [r[0] for r in result if r[0] != since]
        return ids, data_etag, int(fresh or 0)

    async def change_set_rows(
        self, table: TableEntry, change_set: str, active_only: bool, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]:
        async with self.db.snapshot() as conn:
            data_etag = await self._data_etag(conn, table)
            if active_only:
                stmt = select(sync_rows).where(
                    sync_rows.c.table_pk == table.pk,
                    sync_rows.c.data_etag_at_modification == change_set,
                )
                key, key_name = sync_rows.c.row_etag, "row_etag"
                records, has_more = await _paged(conn, stmt, key, page)
            else:
                # One revision per row: the last one the change set wrote for that row.
                last = (
                    select(func.max(sync_revisions.c.seq))
                    .where(
                        sync_revisions.c.table_pk == table.pk,
                        sync_revisions.c.data_etag_at_modification == change_set,
                    )
                    .group_by(sync_revisions.c.row_id)
                    .scalar_subquery()
                )
                stmt = select(sync_revisions).where(
                    and_(sync_revisions.c.table_pk == table.pk, sync_revisions.c.seq.in_(last))
                )
                key, key_name = sync_revisions.c.row_id, "row_id"
                records, has_more = await _paged(conn, stmt, key, page)
        rows = [row_from_record(r) for r in records]
        return data_etag, _page_of(records, has_more, key_name, rows)

    async def query_revisions(
        self,
        table: TableEntry,
        by_savepoint: bool,
        start: str,
        end: str | None,
        page: PageRequest,
    ) -> tuple[str | None, Page[StoredRow]]:
        async with self.db.snapshot() as conn:
            data_etag = await self._data_etag(conn, table)
            revs = sync_revisions
            field: ColumnElement[Any] = (
                revs.c.savepoint_timestamp if by_savepoint else revs.c.recorded_at
            )
            start_value: Any = start if by_savepoint else _parse_time(start)
            first = (
                await conn.execute(
                    select(func.min(revs.c.seq)).where(
                        revs.c.table_pk == table.pk, field >= start_value
                    )
                )
            ).scalar_one()
            if first is None:
                return data_etag, Page([], False)
            stmt = select(revs).where(revs.c.table_pk == table.pk, revs.c.seq >= first)
            if end is not None:
                end_value: Any = end if by_savepoint else _parse_time(end)
                last = (
                    await conn.execute(
                        select(func.max(revs.c.seq)).where(
                            revs.c.table_pk == table.pk, field <= end_value
                        )
                    )
                ).scalar_one()
                if last is None or last < first:
                    return data_etag, Page([], False)
                stmt = stmt.where(revs.c.seq <= last)
            records, has_more = await _paged(conn, stmt, revs.c.seq, page)
        # Newest revision per row within the page, kept in sequence order (§5.7.2, quirk 8.6).
        newest: dict[str, Any] = {}
        for record in records:
            newest.pop(record["row_id"], None)
            newest[record["row_id"]] = record
        rows = [row_from_record(r) for r in newest.values()]
        return data_etag, _page_of(records, has_more, "seq", rows)

    # -- ACLs ------------------------------------------------------------------------------

    async def list_acls(
        self, table: TableEntry, scope_type: str | None, page: PageRequest
    ) -> Page[TableAcl]:
        acls = sync_table_acls
        async with self.db.snapshot() as conn:
            stmt = select(acls).where(acls.c.table_pk == table.pk)
            if scope_type is not None:
                stmt = stmt.where(acls.c.scope_type == scope_type)
            records = list((await conn.execute(stmt)).mappings())
        items = sorted(
            (_acl(r) for r in records), key=lambda a: (a.role, a.scope_type, a.scope_value or "")
        )
        start = int(page.key) if isinstance(page.key, int) else 0
        chunk = items[start : start + page.limit]
        has_more = start + page.limit < len(items)
        return Page(
            chunk, has_more, start if chunk else None, start + len(chunk) if chunk else None
        )

    async def get_acl(
        self, table: TableEntry, scope_type: str, scope_value: str | None
    ) -> TableAcl | None:
        acls = sync_table_acls
        async with self.db.snapshot() as conn:
            record = (
                (
                    await conn.execute(
                        select(acls).where(
                            acls.c.table_pk == table.pk,
                            acls.c.scope_type == scope_type,
                            acls.c.scope_value == (scope_value or ""),
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _acl(record) if record else None

    async def put_acl(self, table: TableEntry, acl: TableAcl) -> TableAcl:
        acls = sync_table_acls
        key = {
            "table_pk": table.pk,
            "scope_type": acl.scope_type,
            "scope_value": acl.scope_value or "",
        }
        async with self.db.write(lock=(table.app_id, table.table_id)) as conn:
            changed = await conn.execute(
                update(acls)
                .where(*(acls.c[name] == value for name, value in key.items()))
                .values(role=acl.role)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(acls), {**key, "role": acl.role})
        return acl

    async def delete_acl(self, table: TableEntry, scope_type: str, scope_value: str | None) -> None:
        acls = sync_table_acls
        async with self.db.write() as conn:
            await conn.execute(
                delete(acls).where(
                    acls.c.table_pk == table.pk,
                    acls.c.scope_type == scope_type,
                    acls.c.scope_value == (scope_value or ""),
                )
            )

    # -- installation log ------------------------------------------------------------------

    async def log_interaction(
        self,
        installation_id: str,
        user: str,
        kind: str,
        table_id: str | None,
        detail: str | None,
    ) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(sync_installation_log),
                    {
                        "installation_id": installation_id[:255],
                        "recorded_at": _now(),
                        "user_name": user,
                        "kind": kind,
                        "table_id": table_id,
                        "detail": detail,
                    },
                )
        except Exception:  # logging must never fail a request (§5.19)
            logger.warning("could not write the installation log", exc_info=True)


def _acl(record: Any) -> TableAcl:
    return TableAcl(record["scope_type"], record["scope_value"] or None, record["role"])


def _parse_time(value: str) -> datetime:
    """`yyyy-MM-ddTHH:mm:ss.SSSSSSSSS` (UTC) with the fraction read as nanoseconds (quirk 8.17)."""
    from sync_endpoint.errors import BadRequestError

    main, _, fraction = value.partition(".")
    try:
        moment = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequestError(f"Bad arguments: invalid timestamp {value!r}") from None
    if fraction:
        if not fraction.isdigit() or len(fraction) > 9:
            raise BadRequestError(f"Bad arguments: invalid timestamp {value!r}")
        moment = moment.replace(microsecond=int(fraction.ljust(9, "0")[:6]))
    return moment
