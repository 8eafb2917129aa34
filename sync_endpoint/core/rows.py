"""The row-change algorithm of a push (SYNC_PROTOCOL §5.5, §5.6; DECISIONS D3, D7, D12).

`plan_changes` is pure: given the rows the server holds and the rows a client pushed, it decides
one outcome per pushed row (in order) and the revisions to write. The storage layer applies the
plan inside the table's locked transaction, so a retried push finds its own earlier writes and
answers SUCCESS without writing again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sync_endpoint.core.access import RowAccessPolicy
from sync_endpoint.core.columns import TableSchema, values_equal
from sync_endpoint.core.models import (
    DEFAULT_SCOPE,
    IncomingRow,
    Outcome,
    RowOutcome,
    RowWrite,
    StoredRow,
)


def new_etag() -> str:
    """A UUID-ETag (`uuid:` + random UUID), the form of every server-minted ETag."""
    return f"uuid:{uuid.uuid4()}"


@dataclass(frozen=True)
class ChangePlan:
    outcomes: list[RowOutcome]
    writes: list[RowWrite]


def significant_match(schema: TableSchema, incoming: IncomingRow, stored: StoredRow) -> bool:
    """The reference's "matching significant field values" test, numbers compared leniently."""
    scope = incoming.scope if incoming.scope is not None else stored.scope
    merged = {**stored.values, **incoming.values}
    return (
        incoming.deleted == stored.deleted
        and scope == stored.scope
        and incoming.form_id == stored.form_id
        and incoming.locale == stored.locale
        and incoming.savepoint_type == stored.savepoint_type
        and incoming.savepoint_timestamp == stored.savepoint_timestamp
        and incoming.savepoint_creator == stored.savepoint_creator
        and values_equal(schema, merged, stored.values)
    )


def plan_changes(
    schema: TableSchema,
    existing: Mapping[str, StoredRow],
    rows: Sequence[IncomingRow],
    user: str,
    change_set: str,
    policy: RowAccessPolicy,
    mint: Callable[[], str] = new_etag,
) -> ChangePlan:
    """Decide the outcome of every pushed row, in request order.

    Args:
        schema: the table's validated definition.
        existing: current server rows (tombstones included) for the pushed ids.
        rows: the pushed rows, already validated against `schema`.
        user: the login written to createUser/lastUpdateUser.
        change_set: the dataETag that tags every revision of this push.
        policy: row-level access rules for the caller (D12).

    Returns:
        One outcome per row and the revisions to write. A row pushed twice in one request sees
        the state left by its earlier occurrence.
    """
    current = dict(existing)
    outcomes: list[RowOutcome] = []
    writes: list[RowWrite] = []
    for row in rows:
        row_id = row.row_id if row.row_id is not None else mint()
        stored = current.get(row_id)
        if stored is None:
            if row.deleted:
                # D3: deleting a row the server never had succeeds; nothing to write.
                gone = _from_incoming(row, row_id, row.row_etag or "", None, user, None)
                outcomes.append(RowOutcome(Outcome.SUCCESS, replace(gone, deleted=True)))
                continue
            candidate = _from_incoming(row, row_id, mint(), change_set, user, None)
            if not policy.may_insert(candidate):
                outcomes.append(RowOutcome(Outcome.IN_CONFLICT, policy.as_seen(candidate)))
                continue
            writes.append(RowWrite(candidate, None, is_insert=True))
            current[row_id] = candidate
            outcomes.append(RowOutcome(Outcome.SUCCESS, candidate))
            continue

        if row.row_etag != stored.row_etag:
            if policy.may_see(stored) and significant_match(schema, row, stored):
                outcomes.append(RowOutcome(Outcome.SUCCESS, stored))
            else:
                outcomes.append(RowOutcome(Outcome.IN_CONFLICT, policy.as_seen(stored)))
            continue

        if row.deleted:
            updated = replace(
                stored,
                row_etag=mint(),
                deleted=True,
                data_etag_at_modification=change_set,
                last_update_user=user,
            )
        else:
            updated = _from_incoming(
                row,
                row_id,
                mint(),
                change_set,
                stored.create_user,
                stored,
                last_update_user=user,
            )
        if not policy.may_change(stored, updated):
            outcomes.append(RowOutcome(Outcome.IN_CONFLICT, policy.as_seen(stored)))
            continue
        writes.append(RowWrite(updated, stored.row_etag, is_insert=False))
        current[row_id] = updated
        outcomes.append(RowOutcome(Outcome.SUCCESS, updated))
    return ChangePlan(outcomes, writes)


def _from_incoming(
    row: IncomingRow,
    row_id: str,
    row_etag: str,
    change_set: str | None,
    create_user: str | None,
    stored: StoredRow | None,
    last_update_user: str | None = None,
) -> StoredRow:
    """The state a row takes from a push: scope inherited when absent, values merged (§5.5)."""
    if row.scope is not None:
        scope = row.scope
    else:
        scope = stored.scope if stored is not None else DEFAULT_SCOPE
    values = {**stored.values, **row.values} if stored is not None else dict(row.values)
    return StoredRow(
        row_id=row_id,
        row_etag=row_etag,
        data_etag_at_modification=change_set,
        deleted=False,
        create_user=create_user,
        last_update_user=last_update_user if stored is not None else create_user,
        form_id=row.form_id,
        locale=row.locale,
        savepoint_type=row.savepoint_type,
        savepoint_timestamp=row.savepoint_timestamp,
        savepoint_creator=row.savepoint_creator,
        scope=scope,
        values=values,
    )
