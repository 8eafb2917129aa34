"""Interfaces the domain depends on; storage/ and identity/ implement them."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sync_endpoint.core.files import StoredFile
from sync_endpoint.core.models import (
    Column,
    Page,
    Principal,
    RowWrite,
    StoredRow,
    TableAcl,
    TableEntry,
    UserInfo,
)
from sync_endpoint.core.paging import PageRequest


class RowWriter(Protocol):
    """A push in progress: the table's write lock is held until the context exits.

    Leaving the context normally commits; an exception rolls everything back.
    """

    table: TableEntry  # re-read under the lock: its data_etag is authoritative

    async def load(self, row_ids: Sequence[str]) -> dict[str, StoredRow]:
        """Current rows (tombstones included) for these ids."""
        ...

    async def apply(self, writes: Sequence[RowWrite], change_set: str) -> None:
        """Store the revisions, log them under `change_set` and make it the table's dataETag."""
        ...


class Storage(Protocol):
    """Everything persistent about sync, behind one narrow async interface.

    Reads run in one snapshot, so a reported dataETag always matches the rows returned with it.
    Writes that change a table's rows take that table's lock (D6); nothing else does.
    """

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def list_tables(self, app_id: str, page: PageRequest) -> Page[TableEntry]:
        """Live tables in creation order, keyset-paged on the creation key."""
        ...

    async def get_table(self, app_id: str, table_id: str) -> TableEntry | None: ...

    async def create_table(
        self, app_id: str, table_id: str, columns: Sequence[Column], creator: str
    ) -> tuple[TableEntry, bool]:
        """Create the table unless it exists; returns (entry, created). Takes the table lock."""
        ...

    async def delete_table(self, table: TableEntry) -> list[str]:
        """Drop this incarnation with rows, history, ACLs, table-level files of every client
        version and row attachments (§5.12); returns the blob refs to discard afterwards."""
        ...

    def row_writer(self, table: TableEntry) -> AbstractAsyncContextManager[RowWriter]:
        """Open a push transaction on the table (raises LockUnavailable, TableNotFound)."""
        ...

    async def read_rows(
        self, table: TableEntry, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]:
        """Live rows (no tombstones) in creation order, with the dataETag of the snapshot."""
        ...

    async def get_row(self, table: TableEntry, row_id: str) -> StoredRow | None: ...

    async def diff(
        self, table: TableEntry, since: str | None, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]:
        """Rows changed after change set `since` (all rows when unknown), latest state, in
        order of their last change. Tombstones included."""
        ...

    async def change_sets(
        self, table: TableEntry, since: str | None, since_sequence: int | None
    ) -> tuple[list[str], str | None, int]:
        """Change-set ids after the anchor, the table's dataETag and a fresh sequence value."""
        ...

    async def change_set_rows(
        self, table: TableEntry, change_set: str, active_only: bool, page: PageRequest
    ) -> tuple[str | None, Page[StoredRow]]: ...

    async def query_revisions(
        self,
        table: TableEntry,
        by_savepoint: bool,
        start: str,
        end: str | None,
        page: PageRequest,
    ) -> tuple[str | None, Page[StoredRow]]:
        """Revisions within a time window (server time or savepoint timestamp)."""
        ...

    async def list_acls(
        self, table: TableEntry, scope_type: str | None, page: PageRequest
    ) -> Page[TableAcl]: ...

    async def get_acl(
        self, table: TableEntry, scope_type: str, scope_value: str | None
    ) -> TableAcl | None: ...

    async def put_acl(self, table: TableEntry, acl: TableAcl) -> TableAcl: ...

    async def delete_acl(
        self, table: TableEntry, scope_type: str, scope_value: str | None
    ) -> None: ...

    async def log_interaction(
        self,
        installation_id: str,
        user: str,
        kind: str,
        table_id: str | None,
        detail: str | None,
    ) -> None:
        """Append to the installation interaction log (§5.19); never raises."""
        ...


class IdentityProvider(Protocol):
    """A directory of users: verifies passwords and lists users with their authorities."""

    async def authenticate(self, login: str, password: str) -> Principal | None:
        """The principal for valid credentials, None for wrong ones.

        Raises ServiceUnavailable when the directory cannot be reached (D13: 503, not 401).
        A user whose groups give no authority is returned with an empty authority set.
        """
        ...

    async def list_users(self) -> list[UserInfo]:
        """Every user holding at least one authority, for usersInfo (§12.2)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class FileStore(Protocol):
    """Config files and row attachments: metadata plus streamed blob bodies.

    No method takes a table lock (D6): file traffic never blocks row pushes.
    """

    async def write_blob(
        self, chunks: AsyncIterable[bytes], limit: int, content_type: str, path: str
    ) -> StoredFile:
        """Stream bytes into the blob store (md5 and length computed on the way); the result is
        not yet referenced by anything. PayloadTooLarge beyond `limit`, nothing kept."""
        ...

    def read(self, file: StoredFile) -> AsyncIterator[bytes]: ...

    async def discard(self, file: StoredFile) -> None: ...

    async def discard_refs(self, refs: list[str]) -> None: ...

    async def get_file(self, app_id: str, version: str, path: str) -> StoredFile | None: ...

    async def put_file(
        self, app_id: str, version: str, table_id: str | None, file: StoredFile
    ) -> bool:
        """Store or replace a config file; True when the path was new."""
        ...

    async def delete_file(self, app_id: str, version: str, path: str) -> bool: ...

    async def list_files(
        self, app_id: str, version: str, table_id: str | None
    ) -> list[StoredFile]: ...

    async def list_table_files(
        self, app_id: str, version: str, table_ids: list[str]
    ) -> dict[str, list[StoredFile]]: ...

    async def client_versions(self, app_id: str) -> list[str]: ...

    async def get_attachment(
        self, table: TableEntry, row_id: str, path: str
    ) -> StoredFile | None: ...

    async def add_attachment(self, table: TableEntry, row_id: str, file: StoredFile) -> None:
        """Store once; identical bytes again are a no-op, different bytes a 400 (D11)."""
        ...

    async def list_attachments(self, table: TableEntry, row_id: str) -> list[StoredFile]: ...
