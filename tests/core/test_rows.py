"""`plan_changes`, the row-change algorithm of a push (SYNC_PROTOCOL §5.5, §5.6; D3, D7, D12)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from sync_endpoint.core.access import HIDDEN_SCOPE, RowAccessPolicy
from sync_endpoint.core.columns import TableSchema
from sync_endpoint.core.models import (
    DEFAULT_SCOPE,
    Access,
    Column,
    FilterScope,
    IncomingRow,
    Outcome,
    Principal,
    RowWrite,
    StoredRow,
    Values,
)
from sync_endpoint.core.rows import ChangePlan, new_etag, plan_changes

SCHEMA = TableSchema.build(
    [
        Column("age", "age", "integer", "[]"),
        Column("name", "name", "string", "[]"),
        Column("score", "score", "number", "[]"),
    ]
)
CHANGE_SET = "uuid:00000000-0000-4000-8000-00000000c0de"
ETAG = "uuid:stored-etag"
TIMESTAMP = "2024-05-01T10:00:00.000000000"
VALUES: Values = {"age": "34", "name": "Ana", "score": "9.8"}

ALICE = Principal(
    login="alice",
    user_id="username:alice",
    full_name="alice",
    authorities=frozenset({"ROLE_USER", "ROLE_SYNCHRONIZE_TABLES", "GROUP_REGION_NORTH"}),
)
SUPER = Principal(
    login="super",
    user_id="username:super",
    full_name="super",
    authorities=frozenset({"ROLE_USER", "ROLE_SYNCHRONIZE_TABLES", "ROLE_SUPER_USER_TABLES"}),
)


class Mint:
    """Deterministic ETag minting: uuid:minted-1, uuid:minted-2, …"""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"uuid:minted-{self.count}"


def stored(
    row_id: str = "r1",
    row_etag: str = ETAG,
    *,
    deleted: bool = False,
    scope: FilterScope = DEFAULT_SCOPE,
    values: Values = VALUES,
) -> StoredRow:
    """A row the server holds, created and last updated by maria."""
    return StoredRow(
        row_id=row_id,
        row_etag=row_etag,
        data_etag_at_modification="uuid:earlier-change-set",
        deleted=deleted,
        create_user="maria",
        last_update_user="maria",
        form_id="census",
        locale="en",
        savepoint_type="COMPLETE",
        savepoint_timestamp=TIMESTAMP,
        savepoint_creator="username:maria",
        scope=scope,
        values=dict(values),
    )


def pushed(
    row_id: str | None = "r1",
    row_etag: str | None = ETAG,
    *,
    deleted: bool = False,
    scope: FilterScope | None = None,
    values: Values = VALUES,
    form_id: str | None = "census",
    locale: str | None = "en",
    savepoint_type: str | None = "COMPLETE",
    savepoint_timestamp: str | None = TIMESTAMP,
    savepoint_creator: str | None = "username:maria",
) -> IncomingRow:
    """A pushed row whose metadata equals `stored()`'s unless overridden."""
    return IncomingRow(
        row_id=row_id,
        row_etag=row_etag,
        deleted=deleted,
        form_id=form_id,
        locale=locale,
        savepoint_type=savepoint_type,
        savepoint_timestamp=savepoint_timestamp,
        savepoint_creator=savepoint_creator,
        scope=scope,
        values=dict(values),
    )


def plan(
    existing: Sequence[StoredRow],
    rows: Sequence[IncomingRow],
    policy: RowAccessPolicy | None = None,
    user: str = "alice",
) -> ChangePlan:
    by_id: Mapping[str, StoredRow] = {r.row_id: r for r in existing}
    return plan_changes(
        SCHEMA, by_id, rows, user, CHANGE_SET, policy or RowAccessPolicy.unrestricted(), Mint()
    )


def server(principal: Principal = ALICE) -> RowAccessPolicy:
    return RowAccessPolicy.for_principal(principal, "server")


# -- inserts ---------------------------------------------------------------------------------


def test_insert() -> None:
    """A row new to the server is written with a new rowETag, the change set and the user."""
    result = plan([], [pushed(row_etag=None)])
    [outcome] = result.outcomes
    assert outcome.outcome is Outcome.SUCCESS
    row = outcome.row
    assert row.row_id == "r1"
    assert row.row_etag == "uuid:minted-1"
    assert row.data_etag_at_modification == CHANGE_SET
    assert (row.create_user, row.last_update_user) == ("alice", "alice")
    assert row.deleted is False
    assert row.scope == DEFAULT_SCOPE
    assert row.values == VALUES
    assert (row.form_id, row.savepoint_timestamp) == ("census", TIMESTAMP)
    assert result.writes == [RowWrite(row, None, is_insert=True)]


def test_insert_keeps_the_scope_sent() -> None:
    """An insert keeps the filterScope the device sent (D12), whoever the owner is."""
    scope = FilterScope(Access.HIDDEN, row_owner="username:bob")
    result = plan([], [pushed(row_etag=None, scope=scope)], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row.scope == scope
    assert len(result.writes) == 1


def test_insert_without_some_columns_leaves_them_null() -> None:
    """Columns absent from an insert's orderedColumns are null."""
    row = plan([], [pushed(values={"name": "Ana"})]).outcomes[0].row
    assert row.values.get("age") is None
    assert row.values["name"] == "Ana"


def test_null_id_gets_a_minted_uuid_id() -> None:
    """A row pushed with id null gets a fresh `uuid:` id, distinct from its rowETag."""
    result = plan_changes(
        SCHEMA, {}, [pushed(row_id=None, row_etag=None)], "alice", CHANGE_SET,
        RowAccessPolicy.unrestricted(),
    )  # fmt: skip
    row = result.outcomes[0].row
    assert row.row_id.startswith("uuid:")
    uuid.UUID(row.row_id.removeprefix("uuid:"))
    assert row.row_etag.startswith("uuid:")
    assert row.row_etag != row.row_id
    assert result.writes[0].row.row_id == row.row_id


def test_new_etag_is_a_uuid_etag() -> None:
    """Server ETags are `uuid:` + a random UUID, different every time."""
    first, second = new_etag(), new_etag()
    assert first != second
    assert uuid.UUID(first.removeprefix("uuid:")).version == 4


# -- updates ---------------------------------------------------------------------------------


def test_update_with_current_row_etag() -> None:
    """An update naming the current rowETag gets a new rowETag; createUser is kept."""
    new_values = {"age": "35", "name": "Ana", "score": "9.8"}
    result = plan([stored()], [pushed(values=new_values)])
    [outcome] = result.outcomes
    row = outcome.row
    assert outcome.outcome is Outcome.SUCCESS
    assert row.row_etag not in (ETAG, None)
    assert row.data_etag_at_modification == CHANGE_SET
    assert row.create_user == "maria"
    assert row.last_update_user == "alice"
    assert row.values == new_values
    assert result.writes == [RowWrite(row, ETAG, is_insert=False)]


def test_update_takes_request_metadata_including_nulls() -> None:
    """formId, locale and savepoint fields come from the request, null included."""
    row = plan([stored()], [pushed(form_id=None, locale="fr")]).outcomes[0].row
    assert (row.form_id, row.locale) == (None, "fr")


def test_omitted_column_keeps_its_value() -> None:
    """A column absent from an update's orderedColumns keeps its stored value."""
    row = plan([stored()], [pushed(values={"age": "35"})]).outcomes[0].row
    assert row.values == {"age": "35", "name": "Ana", "score": "9.8"}


def test_update_without_scope_inherits_stored_scope() -> None:
    """An update without filterScope keeps the row's current scope."""
    scope = FilterScope(Access.MODIFY, row_owner="username:maria")
    row = plan([stored(scope=scope)], [pushed(scope=None)]).outcomes[0].row
    assert row.scope == scope


def test_update_with_scope_replaces_it() -> None:
    """An update that carries a filterScope stores it."""
    scope = FilterScope(Access.READ_ONLY, group_modify="GROUP_X")
    row = plan([stored()], [pushed(scope=scope)]).outcomes[0].row
    assert row.scope == scope


# -- stale rowETag ---------------------------------------------------------------------------


@pytest.mark.parametrize("row_etag", ["uuid:stale", None])
def test_stale_etag_identical_values_is_success_without_write(row_etag: str | None) -> None:
    """A stale or null rowETag with matching significant fields answers the stored row."""
    existing = stored()
    result = plan([existing], [pushed(row_etag=row_etag)])
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row == existing
    assert result.writes == []


def test_stale_etag_numbers_compared_leniently() -> None:
    """A retried push whose `number` text differs only in form still matches (9.8 = 9.80)."""
    result = plan([stored()], [pushed(row_etag="uuid:stale", values={**VALUES, "score": "9.80"})])
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.writes == []


def test_stale_etag_inherited_scope_matches() -> None:
    """A stale push without filterScope compares with the stored scope (sub-step 3)."""
    scope = FilterScope(Access.MODIFY, row_owner="username:maria")
    result = plan([stored(scope=scope)], [pushed(row_etag="uuid:stale", scope=None)])
    assert result.outcomes[0].outcome is Outcome.SUCCESS


STALE = "uuid:stale"


@pytest.mark.parametrize(
    "row",
    [
        pushed(row_etag=STALE, values={**VALUES, "age": "35"}),
        pushed(row_etag=STALE, values={**VALUES, "name": None}),
        pushed(row_etag=STALE, scope=FilterScope(Access.HIDDEN)),
        pushed(row_etag=STALE, form_id="other"),
        pushed(row_etag=STALE, locale="fr"),
        pushed(row_etag=STALE, savepoint_type="INCOMPLETE"),
        pushed(row_etag=STALE, savepoint_timestamp="2024-05-01T10:00:00.000000001"),
        pushed(row_etag=STALE, savepoint_creator="username:alice"),
    ],
)
def test_stale_etag_different_values_is_conflict(row: IncomingRow) -> None:
    """A stale rowETag with any significant difference is IN_CONFLICT with the full stored row."""
    existing = stored()
    result = plan([existing], [row])
    assert result.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert result.outcomes[0].row == existing
    assert result.outcomes[0].row.values == VALUES
    assert result.writes == []


# -- deletes ---------------------------------------------------------------------------------


def test_delete_with_current_etag() -> None:
    """A delete naming the current rowETag writes a tombstone revision with a new rowETag."""
    result = plan([stored()], [pushed(deleted=True)])
    [outcome] = result.outcomes
    row = outcome.row
    assert outcome.outcome is Outcome.SUCCESS
    assert row.deleted is True
    assert row.row_etag not in (ETAG, None)
    assert row.create_user == "maria"
    # Quirk 8.5 recommendation: the delete's change set and user are stored on the row too.
    assert row.data_etag_at_modification == CHANGE_SET
    assert row.last_update_user == "alice"
    assert row.values == VALUES
    assert result.writes == [RowWrite(row, ETAG, is_insert=False)]


def test_delete_with_stale_etag_is_conflict() -> None:
    """A delete with a stale rowETag is IN_CONFLICT with the stored row (deleted differs)."""
    existing = stored()
    result = plan([existing], [pushed(row_etag="uuid:stale", deleted=True)])
    assert result.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert result.outcomes[0].row == existing
    assert result.writes == []


def test_stale_delete_of_a_tombstone_is_success() -> None:
    """A stale delete of a row that is already an identical tombstone succeeds, no write (§5.6)."""
    tomb = stored(deleted=True)
    result = plan([tomb], [pushed(row_etag="uuid:stale", deleted=True)])
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row == tomb
    assert result.writes == []


def test_delete_of_unknown_row_is_success_without_write() -> None:
    """D3: deleting a row the server never had answers SUCCESS with deleted true, no write."""
    result = plan([], [pushed(row_id="ghost", row_etag="uuid:x", deleted=True)], server())
    [outcome] = result.outcomes
    assert outcome.outcome is Outcome.SUCCESS
    assert outcome.row.row_id == "ghost"
    assert outcome.row.deleted is True
    assert result.writes == []


def test_resurrect_tombstone_with_current_etag() -> None:
    """An update naming a tombstone's current rowETag brings the row back (deleted false)."""
    tomb = stored(row_etag="uuid:tomb", deleted=True)
    result = plan([tomb], [pushed(row_etag="uuid:tomb", values={"age": "40"})])
    row = result.outcomes[0].row
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert row.deleted is False
    assert row.row_etag != "uuid:tomb"
    assert row.values["age"] == "40"
    assert result.writes == [RowWrite(row, "uuid:tomb", is_insert=False)]


# -- several rows ----------------------------------------------------------------------------


def test_one_outcome_per_row_in_request_order() -> None:
    """Exactly one outcome per pushed row, in order, each with the row's id."""
    rows = [
        pushed("a", None),
        pushed("r1", "uuid:stale", values={"age": "1"}),
        pushed("b", "uuid:x", deleted=True),
        pushed("r1", ETAG),
    ]
    result = plan([stored()], rows)
    assert [o.row.row_id for o in result.outcomes] == ["a", "r1", "b", "r1"]
    assert [o.outcome for o in result.outcomes] == [
        Outcome.SUCCESS,
        Outcome.IN_CONFLICT,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
    ]
    assert [w.row.row_id for w in result.writes] == ["a", "r1"]


def test_same_row_twice_identical() -> None:
    """A row pushed twice sees its first occurrence: the repeat matches and writes nothing."""
    update = pushed(values={"age": "35"})
    result = plan([stored()], [update, update])
    first, second = result.outcomes
    assert first.outcome is Outcome.SUCCESS
    assert second.outcome is Outcome.SUCCESS
    assert second.row == first.row
    assert len(result.writes) == 1


def test_same_row_twice_different() -> None:
    """A second, different change with the now-stale rowETag conflicts with the first's result."""
    result = plan([stored()], [pushed(values={"age": "35"}), pushed(values={"age": "36"})])
    first, second = result.outcomes
    assert first.outcome is Outcome.SUCCESS
    assert second.outcome is Outcome.IN_CONFLICT
    assert second.row == first.row
    assert len(result.writes) == 1


def test_same_new_row_twice() -> None:
    """An insert repeated in one request is written once; the repeat answers the inserted row."""
    insert = pushed("new", None)
    result = plan([], [insert, insert])
    assert [o.outcome for o in result.outcomes] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert result.outcomes[1].row == result.outcomes[0].row
    assert len(result.writes) == 1


def test_update_then_delete_in_one_request() -> None:
    """A delete naming the rowETag minted earlier in the same request applies to that state."""
    result = plan(
        [stored()],
        [pushed(values={"age": "35"}), pushed(row_etag="uuid:minted-1", deleted=True)],
    )
    assert [o.outcome for o in result.outcomes] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert result.outcomes[1].row.deleted is True
    assert [w.previous_row_etag for w in result.writes] == [ETAG, "uuid:minted-1"]


# -- row-level access (D12, §5.17.4) ----------------------------------------------------------

BOB_READ_ONLY = FilterScope(Access.READ_ONLY, row_owner="username:bob")
BOB_HIDDEN = FilterScope(Access.HIDDEN, row_owner="username:bob")
ALICE_READ_ONLY = FilterScope(Access.READ_ONLY, row_owner="username:alice")


def test_sync_user_cannot_update_read_only_row_of_another() -> None:
    """A refused update is IN_CONFLICT with the stored row (never DENIED) and writes nothing."""
    existing = stored(scope=BOB_READ_ONLY)
    result = plan([existing], [pushed(values={"age": "35"})], server())
    assert result.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert result.outcomes[0].row == existing
    assert result.writes == []


def test_sync_user_cannot_delete_read_only_row_of_another() -> None:
    """A refused delete is IN_CONFLICT with the stored row."""
    existing = stored(scope=BOB_READ_ONLY)
    result = plan([existing], [pushed(deleted=True)], server())
    assert result.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert result.outcomes[0].row == existing
    assert result.writes == []


@pytest.mark.parametrize(
    "row",
    [
        pushed(values={"age": "35"}),
        pushed(deleted=True),
        pushed(row_etag="uuid:stale"),
        pushed(row_etag=None),
    ],
)
def test_hidden_row_of_another_answers_tombstone(row: IncomingRow) -> None:
    """Any change to a row hidden from the user is IN_CONFLICT with the revocation tombstone."""
    existing = stored(scope=BOB_HIDDEN)
    result = plan([existing], [row], server())
    [outcome] = result.outcomes
    assert outcome.outcome is Outcome.IN_CONFLICT
    tomb = outcome.row
    assert (tomb.row_id, tomb.row_etag) == ("r1", ETAG)
    assert tomb.deleted is True
    assert tomb.values == {}
    assert tomb.scope == HIDDEN_SCOPE == FilterScope(default_access=Access.HIDDEN)
    assert (tomb.form_id, tomb.create_user, tomb.savepoint_timestamp) == (None, None, None)
    assert result.writes == []


def test_owner_may_update() -> None:
    """The row's owner may update it even when its default access is READ_ONLY."""
    result = plan([stored(scope=ALICE_READ_ONLY)], [pushed(values={"age": "35"})], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row.scope == ALICE_READ_ONLY
    assert len(result.writes) == 1


def test_owner_may_delete() -> None:
    """The row's owner may delete it."""
    result = plan([stored(scope=ALICE_READ_ONLY)], [pushed(deleted=True)], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row.deleted is True


@pytest.mark.parametrize(
    "scope",
    [
        FilterScope(Access.FULL, row_owner="username:alice"),
        FilterScope(Access.READ_ONLY, row_owner="username:bob"),
        FilterScope(Access.READ_ONLY, row_owner="username:alice", group_modify="GROUP_X"),
    ],
)
def test_owner_may_not_change_scope(scope: FilterScope) -> None:
    """Changing a row's access fields needs the `p` right, which owners lack."""
    existing = stored(scope=ALICE_READ_ONLY)
    result = plan([existing], [pushed(scope=scope)], server())
    assert result.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert result.outcomes[0].row == existing
    assert result.writes == []


def test_owner_may_resend_the_same_scope() -> None:
    """An update that repeats the stored scope is not a scope change."""
    result = plan([stored(scope=ALICE_READ_ONLY)], [pushed(scope=ALICE_READ_ONLY)], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS


def test_group_privileged_member_may_change_scope() -> None:
    """A member of the row's `_group_privileged` may change its access fields."""
    scope = replace(BOB_HIDDEN, group_privileged="GROUP_REGION_NORTH")
    new_scope = FilterScope(Access.FULL)
    result = plan([stored(scope=scope)], [pushed(scope=new_scope)], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row.scope == new_scope
    assert len(result.writes) == 1


def test_group_modify_member_may_update_not_delete() -> None:
    """`_group_modify` grants read and write but not delete."""
    scope = replace(BOB_READ_ONLY, group_modify="GROUP_REGION_NORTH")
    updated = plan([stored(scope=scope)], [pushed(values={"age": "1"})], server())
    deleted = plan([stored(scope=scope)], [pushed(deleted=True)], server())
    assert updated.outcomes[0].outcome is Outcome.SUCCESS
    assert deleted.outcomes[0].outcome is Outcome.IN_CONFLICT
    assert deleted.writes == []


def test_visible_row_stale_identical_is_success_even_without_write_right() -> None:
    """A matching retry of a read-only row answers SUCCESS: nothing would change."""
    existing = stored(scope=BOB_READ_ONLY)
    result = plan([existing], [pushed(row_etag="uuid:stale")], server())
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert result.outcomes[0].row == existing


def test_super_user_is_not_restricted_in_server_mode() -> None:
    """Privileged roles bypass row-level access: hidden rows, deletes and scope changes."""
    result = plan(
        [stored(scope=BOB_HIDDEN)], [pushed(scope=FilterScope(Access.FULL))], server(SUPER)
    )
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert len(result.writes) == 1


@pytest.mark.parametrize(
    "row",
    [
        pushed(values={"age": "35"}),
        pushed(deleted=True),
        pushed(scope=FilterScope(Access.FULL)),
    ],
)
def test_device_mode_allows_everything(row: IncomingRow) -> None:
    """SYNC_ROW_ACCESS=device restores the reference: any user may change any row."""
    policy = RowAccessPolicy.for_principal(ALICE, "device")
    result = plan([stored(scope=BOB_HIDDEN)], [row], policy)
    assert result.outcomes[0].outcome is Outcome.SUCCESS
    assert len(result.writes) == 1
