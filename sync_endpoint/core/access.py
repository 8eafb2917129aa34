"""Row-level access (DECISIONS D12): what a caller may see and change, decided on the server.

The rules are the device's own (SYNC_PROTOCOL §5.17.4), first match wins: privileged users do
everything; a row's owner may read, write and delete it; `_group_privileged` members may do
everything, `_group_modify` members read and write, `_group_read_only` members read; otherwise
`_default_access` decides (FULL rwd, MODIFY rw, READ_ONLY r, HIDDEN nothing). Changing a row's
access fields needs the `p` right. A refused change is never DENIED (Android then fails the
table on every later sync): the caller gets IN_CONFLICT with the row as they may see it, and a
row they may not see is shown as a tombstone with every value null.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_endpoint.core.models import Access, FilterScope, Principal, StoredRow

PRIVILEGED_ROLES = frozenset(
    {"ROLE_SUPER_USER_TABLES", "ROLE_ADMINISTER_TABLES", "ROLE_SITE_ACCESS_ADMIN"}
)
HIDDEN_SCOPE = FilterScope(default_access=Access.HIDDEN)

_BY_DEFAULT = {
    Access.FULL: "rwd",
    Access.MODIFY: "rw",
    Access.READ_ONLY: "r",
    Access.HIDDEN: "",
}


@dataclass(frozen=True)
class RowAccessPolicy:
    """Access decisions for one caller. `enforce=False` is the reference (`device`) mode."""

    principal: Principal | None
    enforce: bool

    @classmethod
    def unrestricted(cls) -> RowAccessPolicy:
        return cls(None, enforce=False)

    @classmethod
    def for_principal(cls, principal: Principal, mode: str) -> RowAccessPolicy:
        privileged = not PRIVILEGED_ROLES.isdisjoint(principal.authorities)
        return cls(principal, enforce=mode == "server" and not privileged)

    def rights(self, row: StoredRow) -> str:
        if not self.enforce or self.principal is None:
            return "rwdp"
        scope, who = row.scope, self.principal
        if scope.row_owner is not None and scope.row_owner == who.user_id:
            return "rwd"
        if scope.group_privileged and who.has(scope.group_privileged):
            return "rwdp"
        if scope.group_modify and who.has(scope.group_modify):
            return "rw"
        if scope.group_read_only and who.has(scope.group_read_only):
            return "r"
        return _BY_DEFAULT[scope.default_access]

    def may_see(self, row: StoredRow) -> bool:
        return "r" in self.rights(row)

    def may_insert(self, row: StoredRow) -> bool:
        """A row new to the server may be created by anyone, with the scope the device sent."""
        return True

    def may_change(self, stored: StoredRow, updated: StoredRow) -> bool:
        rights = self.rights(stored)
        needed = "d" if updated.deleted else "w"
        if needed not in rights:
            return False
        return updated.deleted or updated.scope == stored.scope or "p" in rights

    def as_seen(self, row: StoredRow) -> StoredRow:
        """The row itself when visible, otherwise the revocation tombstone of D12."""
        if self.may_see(row):
            return row
        return tombstone(row)


def tombstone(row: StoredRow) -> StoredRow:
    return StoredRow(
        row_id=row.row_id,
        row_etag=row.row_etag,
        data_etag_at_modification=row.data_etag_at_modification,
        deleted=True,
        create_user=None,
        last_update_user=None,
        form_id=None,
        locale=None,
        savepoint_type=None,
        savepoint_timestamp=None,
        savepoint_creator=None,
        scope=HIDDEN_SCOPE,
        values={},
    )
