"""Row-level access policy (DECISIONS D12, SYNC_PROTOCOL §5.17.4): rights, first match wins."""

from __future__ import annotations

import pytest

from sync_endpoint.core.access import HIDDEN_SCOPE, RowAccessPolicy, tombstone
from sync_endpoint.core.models import Access, FilterScope, Principal, StoredRow


def principal(*authorities: str, login: str = "alice") -> Principal:
    return Principal(
        login=login,
        user_id=f"username:{login}",
        full_name=login,
        authorities=frozenset({"ROLE_USER", "ROLE_SYNCHRONIZE_TABLES", *authorities}),
    )


ALICE = principal("GROUP_NORTH")


def row(scope: FilterScope, deleted: bool = False) -> StoredRow:
    return StoredRow(
        row_id="r1",
        row_etag="uuid:e1",
        data_etag_at_modification="uuid:c1",
        deleted=deleted,
        create_user="bob",
        last_update_user="bob",
        form_id="census",
        locale="en",
        savepoint_type="COMPLETE",
        savepoint_timestamp="2024-05-01T10:00:00.000000000",
        savepoint_creator="username:bob",
        scope=scope,
        values={"name": "Ana"},
    )


def server(who: Principal = ALICE) -> RowAccessPolicy:
    return RowAccessPolicy.for_principal(who, "server")


@pytest.mark.parametrize(
    ("scope", "rights"),
    [
        (FilterScope(Access.FULL), "rwd"),
        (FilterScope(Access.MODIFY), "rw"),
        (FilterScope(Access.READ_ONLY), "r"),
        (FilterScope(Access.HIDDEN), ""),
        (FilterScope(Access.HIDDEN, row_owner="username:alice"), "rwd"),
        (FilterScope(Access.READ_ONLY, row_owner="username:bob"), "r"),
        (FilterScope(Access.HIDDEN, group_privileged="GROUP_NORTH"), "rwdp"),
        (FilterScope(Access.HIDDEN, group_modify="GROUP_NORTH"), "rw"),
        (FilterScope(Access.HIDDEN, group_read_only="GROUP_NORTH"), "r"),
        (FilterScope(Access.HIDDEN, group_privileged="GROUP_SOUTH"), ""),
        # First matching rule wins: a read-only group member of a FULL row may only read.
        (FilterScope(Access.FULL, group_read_only="GROUP_NORTH"), "r"),
        # The owner rule comes before the group rules.
        (FilterScope(Access.HIDDEN, "username:alice", group_privileged="GROUP_NORTH"), "rwd"),
        (FilterScope(Access.HIDDEN, group_privileged="GROUP_NORTH", group_modify="G"), "rwdp"),
        # The owner is a user id (`username:<login>`), not a login.
        (FilterScope(Access.HIDDEN, row_owner="alice"), ""),
    ],
)
def test_rights_of_a_sync_user(scope: FilterScope, rights: str) -> None:
    """A sync user's rights follow the device's rules in order (§5.17.4)."""
    assert server().rights(row(scope)) == rights


@pytest.mark.parametrize(
    "authority", ["ROLE_SUPER_USER_TABLES", "ROLE_ADMINISTER_TABLES", "ROLE_SITE_ACCESS_ADMIN"]
)
def test_privileged_roles_are_not_restricted(authority: str) -> None:
    """Super users, table admins and site admins may do everything with every row."""
    policy = server(principal(authority))
    assert not policy.enforce
    assert policy.rights(row(FilterScope(Access.HIDDEN, row_owner="username:bob"))) == "rwdp"


def test_device_mode_and_unrestricted_do_not_enforce() -> None:
    """`device` mode and the unrestricted policy give every right on every row."""
    hidden = row(FilterScope(Access.HIDDEN))
    for policy in (RowAccessPolicy.for_principal(ALICE, "device"), RowAccessPolicy.unrestricted()):
        assert not policy.enforce
        assert policy.rights(hidden) == "rwdp"
        assert policy.as_seen(hidden) == hidden


def test_sync_user_is_enforced_in_server_mode() -> None:
    """A user without a privileged role is subject to the rules in `server` mode."""
    assert server().enforce


@pytest.mark.parametrize(
    ("access", "visible"),
    [(Access.FULL, True), (Access.MODIFY, True), (Access.READ_ONLY, True), (Access.HIDDEN, False)],
)
def test_may_see_by_default_access(access: Access, visible: bool) -> None:
    """FULL, MODIFY and READ_ONLY rows are visible; HIDDEN rows are not."""
    assert server().may_see(row(FilterScope(access))) is visible


def test_may_change_needs_write_for_update_and_delete_for_delete() -> None:
    """An update needs `w`, a delete needs `d`."""
    modify = row(FilterScope(Access.MODIFY))
    policy = server()
    assert policy.may_change(modify, modify)
    assert not policy.may_change(modify, row(FilterScope(Access.MODIFY), deleted=True))
    full = row(FilterScope(Access.FULL))
    assert policy.may_change(full, row(FilterScope(Access.FULL), deleted=True))


def test_scope_change_needs_privileged_right() -> None:
    """Changing access fields needs `p`: owners may not, `_group_privileged` members may."""
    owned = row(FilterScope(Access.READ_ONLY, row_owner="username:alice"))
    assert not server().may_change(owned, row(FilterScope(Access.FULL)))
    group = row(FilterScope(Access.READ_ONLY, group_privileged="GROUP_NORTH"))
    assert server().may_change(group, row(FilterScope(Access.FULL)))


def test_inserts_are_always_allowed() -> None:
    """A row new to the server may be created with any scope (D12)."""
    assert server().may_insert(row(FilterScope(Access.HIDDEN, row_owner="username:bob")))


def test_as_seen_returns_visible_row_or_tombstone() -> None:
    """A visible row is shown as is; a hidden one as the revocation tombstone."""
    visible = row(FilterScope(Access.READ_ONLY))
    assert server().as_seen(visible) is visible
    hidden = row(FilterScope(Access.HIDDEN))
    assert server().as_seen(hidden) == tombstone(hidden)


def test_tombstone_shape() -> None:
    """The tombstone keeps id and rowETag; deleted, no values, scope {defaultAccess: HIDDEN}."""
    original = row(FilterScope(Access.HIDDEN, "username:bob", "G1", "G2", "G3"))
    tomb = tombstone(original)
    assert (tomb.row_id, tomb.row_etag) == (original.row_id, original.row_etag)
    assert tomb.deleted is True
    assert tomb.values == {}
    assert tomb.scope == HIDDEN_SCOPE
    assert FilterScope(Access.HIDDEN, None, None, None, None) == HIDDEN_SCOPE
    assert (tomb.create_user, tomb.last_update_user, tomb.form_id, tomb.locale) == (None,) * 4
    assert (tomb.savepoint_type, tomb.savepoint_timestamp, tomb.savepoint_creator) == (None,) * 3
