"""Table and row use cases: the preconditions of §2.10 and the push of §5.5, over the ports."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sync_endpoint.core.access import RowAccessPolicy
from sync_endpoint.core.columns import TableSchema, is_identifier, same_definition
from sync_endpoint.core.models import Column, IncomingRow, RowOutcome, TableEntry
from sync_endpoint.core.ports import Storage
from sync_endpoint.core.rows import new_etag, plan_changes
from sync_endpoint.errors import (
    BadRequestError,
    DataETagMismatch,
    SchemaETagMismatch,
    TableAlreadyExists,
    TableNotFound,
)

logger = logging.getLogger(__name__)

MAX_TABLE_ID_LENGTH = 200


async def require_table(storage: Storage, app_id: str, table_id: str) -> TableEntry:
    table = await storage.get_table(app_id, table_id)
    if table is None:
        raise TableNotFound(f"Table not found\n{table_id}")
    return table


async def require_schema(
    storage: Storage, app_id: str, table_id: str, schema_etag: str
) -> TableEntry:
    """The live table whose schemaETag is in the URL: 404 if absent, 412 if stale (§2.10)."""
    table = await require_table(storage, app_id, table_id)
    if table.schema_etag != schema_etag:
        raise SchemaETagMismatch(f"SchemaETag differs\n{table.schema_etag}")
    return table


async def create_table(
    storage: Storage, app_id: str, table_id: str, columns: Sequence[Column], creator: str
) -> TableEntry:
    """Create a table, or return the existing one when the definition is identical (D4)."""
    if not is_identifier(table_id, MAX_TABLE_ID_LENGTH):
        raise BadRequestError(f"Bad arguments: invalid tableId {table_id!r}")
    TableSchema.build(columns)  # validate everything before writing (quirk 8.16)
    table, created = await storage.create_table(app_id, table_id, columns, creator)
    if not created and not same_definition(table.columns, columns):
        raise TableAlreadyExists(
            f"Table with tableId '{table_id}' already exists with a different definition"
        )
    if created:
        logger.info("table created", extra={"app_id": app_id, "table_id": table_id})
    return table


async def push_rows(
    storage: Storage,
    table: TableEntry,
    data_etag: str | None,
    rows: Sequence[IncomingRow],
    user: str,
    policy: RowAccessPolicy,
) -> tuple[list[RowOutcome], str | None]:
    """Apply a RowList atomically; returns the outcomes and the table's dataETag after it.

    The body was validated before this call so the lock is held only for the transaction (D6).
    A push that writes nothing keeps the current dataETag (D7).
    """
    schema = TableSchema.build(table.columns)
    async with storage.row_writer(table) as writer:
        current = writer.table.data_etag
        if data_etag != current:
            raise DataETagMismatch(
                f"The dataETag for table {table.table_id} does not match that supplied in the "
                "RowList"
            )
        ids = [row.row_id for row in rows if row.row_id is not None]
        existing = await writer.load(ids)
        change_set = new_etag()
        plan = plan_changes(schema, existing, rows, user, change_set, policy)
        await writer.apply(plan.writes, change_set)
    return plan.outcomes, change_set if plan.writes else current
