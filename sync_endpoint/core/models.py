"""Domain values: tables, columns, rows, outcomes, principals. Frozen and free of I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

Values = Mapping[str, str | None]
T = TypeVar("T")


class Access(StrEnum):
    """`filterScope.defaultAccess` (SYNC_PROTOCOL §4.12)."""

    FULL = "FULL"
    MODIFY = "MODIFY"
    READ_ONLY = "READ_ONLY"
    HIDDEN = "HIDDEN"


class Outcome(StrEnum):
    """`RowOutcome.outcome` (§4.18). FAILED/UNKNOWN/DENIED are never produced (D3, D12)."""

    SUCCESS = "SUCCESS"
    IN_CONFLICT = "IN_CONFLICT"
    DENIED = "DENIED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Column:
    """One column definition exactly as received; `list_child_element_keys` is JSON text."""

    element_key: str
    element_name: str
    element_type: str
    list_child_element_keys: str | None


@dataclass(frozen=True)
class TableEntry:
    """A live table: its id, ETags and definition. `pk` is the storage key of this incarnation."""

    pk: int
    app_id: str
    table_id: str
    schema_etag: str
    data_etag: str | None
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class FilterScope:
    default_access: Access = Access.FULL
    row_owner: str | None = None
    group_read_only: str | None = None
    group_modify: str | None = None
    group_privileged: str | None = None


DEFAULT_SCOPE = FilterScope()


@dataclass(frozen=True)
class StoredRow:
    """A row as the server holds it: the current state, or one revision from the log."""

    row_id: str
    row_etag: str
    data_etag_at_modification: str | None
    deleted: bool
    create_user: str | None
    last_update_user: str | None
    form_id: str | None
    locale: str | None
    savepoint_type: str | None
    savepoint_timestamp: str | None
    savepoint_creator: str | None
    scope: FilterScope
    values: Values = field(default_factory=dict)


@dataclass(frozen=True)
class IncomingRow:
    """A row of a pushed RowList, validated against the table but not yet applied."""

    row_id: str | None
    row_etag: str | None
    deleted: bool
    form_id: str | None
    locale: str | None
    savepoint_type: str | None
    savepoint_timestamp: str | None
    savepoint_creator: str | None
    scope: FilterScope | None
    values: Values


@dataclass(frozen=True)
class RowOutcome:
    """One entry of a RowOutcomeList.

    SUCCESS carries `row` trimmed to id/rowETag/dataETagAtModification/deleted/filterScope by
    the serializer; IN_CONFLICT carries the complete server row (§4.18).
    """

    outcome: Outcome
    row: StoredRow


@dataclass(frozen=True)
class RowWrite:
    """A new revision to store: the row's new state and the rowETag it replaces."""

    row: StoredRow
    previous_row_etag: str | None
    is_insert: bool


@dataclass(frozen=True)
class Principal:
    """Who is calling: login, ODK user id, authorities (sorted) and default group."""

    login: str
    user_id: str
    full_name: str
    authorities: frozenset[str]
    default_group: str | None = None
    anonymous: bool = False

    def has(self, authority: str) -> bool:
        return authority in self.authorities


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    full_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class TableAcl:
    scope_type: str
    scope_value: str | None
    role: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paged listing; `first_key`/`last_key` feed the cursors."""

    items: list[T]
    has_more: bool
    first_key: int | str | None = None
    last_key: int | str | None = None
