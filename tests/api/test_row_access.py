"""Row-level access enforced on the server (DECISIONS D12, SYNC_PROTOCOL §5.17.4, §9 item 73).

alice and bob are plain sync users (groups GROUP_REGION_NORTH / GROUP_REGION_SOUTH); `super`
holds ROLE_SUPER_USER_TABLES. A refused change is IN_CONFLICT (never DENIED); a row hidden
from a user is revoked in diffs as a tombstone and omitted from full pulls.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import pull_all, snapshot, values_of
from tests.helpers import Api, Table, row

HIDDEN_TOMBSTONE_SCOPE = {
    "defaultAccess": "HIDDEN",
    "rowOwner": None,
    "groupReadOnly": None,
    "groupModify": None,
    "groupPrivileged": None,
}


def scope(access: str, owner: str | None = "username:alice", **groups: str) -> dict[str, Any]:
    return {
        "defaultAccess": access,
        "rowOwner": owner,
        "groupReadOnly": groups.get("read"),
        "groupModify": groups.get("modify"),
        "groupPrivileged": groups.get("privileged"),
    }


async def _table_with(api: Api, *rows: dict[str, Any]) -> tuple[Table, dict[str, Any]]:
    table = await api.create_table()
    result = await api.as_user("alice").push(table, list(rows), None)
    assert [o["outcome"] for o in result["rows"]] == ["SUCCESS"] * len(rows)
    return table, result


async def test_hidden_rows_are_seen_by_owner_and_privileged_users_only(api: Api) -> None:
    """A HIDDEN row reaches its owner and privileged users; others get neither row nor 404."""
    hidden = row(name="secret", scope=scope("HIDDEN"))
    public = row(name="public", scope=scope("FULL"))
    read_only = row(name="read only", scope=scope("READ_ONLY"))
    table, _ = await _table_with(api, hidden, public, read_only)
    everyone = {hidden["id"], public["id"], read_only["id"]}
    for login, expected in [
        ("alice", everyone),
        ("super", everyone),
        ("admin", everyone),
        ("bob", everyone - {hidden["id"]}),
    ]:
        user = api.as_user(login)
        listing, _ = await pull_all(user, table.data_uri)
        assert {r["id"] for r in listing} == expected, login
        history, _ = await pull_all(user, table.diff_uri)
        assert {r["id"] for r in history} == expected, login
    await api.as_user("bob").get_json(f"{table.data_uri}/{hidden['id']}", status=404)
    assert (
        values_of(await api.as_user("alice").get_json(f"{table.data_uri}/{hidden['id']}"))["name"]
        == "secret"
    )


async def test_change_the_user_may_not_make_is_in_conflict(api: Api) -> None:
    """bob may read but not change or delete alice's READ_ONLY row: IN_CONFLICT, no write."""
    original = row(name="mine", scope=scope("READ_ONLY"))
    table, first = await _table_with(api, original)
    etag = first["rows"][0]["rowETag"]
    before = await snapshot(api, table)
    bob = api.as_user("bob")
    for attempt in (
        row(original["id"], etag, name="bob's", scope=scope("READ_ONLY")),
        row(original["id"], etag, deleted=True, name="mine", scope=scope("READ_ONLY")),
    ):
        result = await bob.push(table, [attempt], first["dataETag"])
        outcome = result["rows"][0]
        assert outcome["outcome"] == "IN_CONFLICT"
        assert outcome["rowETag"] == etag
        assert values_of(outcome)["name"] == "mine"
        assert outcome["filterScope"] == original["filterScope"]
        assert result["dataETag"] == first["dataETag"]
    assert await snapshot(api, table) == before


async def test_modify_access_allows_update_but_not_delete(api: Api) -> None:
    """MODIFY lets others update the row (rw) but not delete it (no d)."""
    original = row(name="shared", scope=scope("MODIFY"))
    table, first = await _table_with(api, original)
    bob = api.as_user("bob")
    update = row(
        original["id"], first["rows"][0]["rowETag"], name="bob edit", scope=scope("MODIFY")
    )
    updated = await bob.push(table, [update], first["dataETag"])
    assert updated["rows"][0]["outcome"] == "SUCCESS"
    delete = {**update, "rowETag": updated["rows"][0]["rowETag"], "deleted": True}
    refused = await bob.push(table, [delete], updated["dataETag"])
    assert refused["rows"][0]["outcome"] == "IN_CONFLICT"
    assert refused["rows"][0]["deleted"] is False


async def test_changing_access_fields_needs_the_privileged_right(api: Api) -> None:
    """The owner cannot change a row's access fields; a super user or privileged group can."""
    original = row(name="x", scope=scope("FULL", privileged="GROUP_REGION_SOUTH"))
    table, first = await _table_with(api, original)
    etag = first["rows"][0]["rowETag"]
    hide = row(
        original["id"], etag, name="x", scope=scope("HIDDEN", privileged="GROUP_REGION_SOUTH")
    )
    owner = await api.as_user("alice").push(table, [hide], first["dataETag"])
    assert owner["rows"][0]["outcome"] == "IN_CONFLICT"
    assert owner["rows"][0]["filterScope"] == original["filterScope"]

    privileged_group = await api.as_user("bob").push(table, [hide], first["dataETag"])
    assert privileged_group["rows"][0]["outcome"] == "SUCCESS"
    assert privileged_group["rows"][0]["filterScope"]["defaultAccess"] == "HIDDEN"

    back = row(
        original["id"],
        privileged_group["rows"][0]["rowETag"],
        name="x",
        scope=scope("FULL", owner="username:bob"),
    )
    superuser = await api.as_user("super").push(table, [back], privileged_group["dataETag"])
    assert superuser["rows"][0]["outcome"] == "SUCCESS"
    assert superuser["rows"][0]["filterScope"]["rowOwner"] == "username:bob"


async def test_group_rights(api: Api) -> None:
    """groupModify members may write, groupReadOnly members only read (§5.17.4 rule 4)."""
    by_group = row(
        name="group row",
        scope=scope(
            "HIDDEN",
            owner="username:nobody",
            modify="GROUP_REGION_SOUTH",
            read="GROUP_REGION_NORTH",
        ),
    )
    table, first = await _table_with(api, by_group)
    etag = first["rows"][0]["rowETag"]
    alice_view, _ = await pull_all(api.as_user("alice"), table.data_uri)
    assert [r["id"] for r in alice_view] == [by_group["id"]]
    change = {**row(by_group["id"], etag, name="edited"), "filterScope": by_group["filterScope"]}
    refused = await api.as_user("alice").push(table, [change], first["dataETag"])
    assert refused["rows"][0]["outcome"] == "IN_CONFLICT"
    allowed = await api.as_user("bob").push(table, [change], first["dataETag"])
    assert allowed["rows"][0]["outcome"] == "SUCCESS"


async def test_inserts_keep_the_scope_the_device_sent(api: Api) -> None:
    """A new row is stored with whatever scope the device sent, even one hiding it from itself."""
    table = await api.create_table()
    foreign = row(name="for alice only", scope=scope("HIDDEN", owner="username:alice"))
    result = await api.as_user("bob").push(table, [foreign], None)
    assert result["rows"][0]["outcome"] == "SUCCESS"
    assert result["rows"][0]["filterScope"] == foreign["filterScope"]
    assert (await api.as_user("bob").get_json(table.data_uri))["rows"] == []
    alice_rows = (await api.as_user("alice").get_json(table.data_uri))["rows"]
    assert [r["id"] for r in alice_rows] == [foreign["id"]]
    assert alice_rows[0]["createUser"] == "bob"


async def test_rows_hidden_since_a_data_etag_come_as_tombstones(api: Api) -> None:
    """A row hidden after bob's last sync reaches his diff and change set as a tombstone (D12)."""
    original = row(name="soon hidden", age="5", scope=scope("FULL"))
    table, first = await _table_with(api, original)
    bob = api.as_user("bob")
    assert len((await bob.get_json(table.data_uri))["rows"]) == 1
    hide = row(
        original["id"],
        first["rows"][0]["rowETag"],
        name="soon hidden",
        age="5",
        scope=scope("HIDDEN"),
    )
    hidden = await api.as_user("super").push(table, [hide], first["dataETag"])
    assert hidden["rows"][0]["outcome"] == "SUCCESS"
    new_etag = hidden["rows"][0]["rowETag"]

    for url, params in [
        (table.diff_uri, {"data_etag": first["dataETag"]}),
        (f"{table.diff_uri}/changeSets/{hidden['dataETag']}", {}),
    ]:
        rows, _ = await pull_all(bob, url, **params)
        assert len(rows) == 1, url
        tombstone = rows[0]
        assert tombstone["id"] == original["id"]
        assert tombstone["rowETag"] == new_etag
        assert tombstone["deleted"] is True
        assert tombstone["filterScope"] == HIDDEN_TOMBSTONE_SCOPE
        assert {c["value"] for c in tombstone["orderedColumns"]} == {None}
        for key in (
            "createUser",
            "lastUpdateUser",
            "formId",
            "locale",
            "savepointType",
            "savepointTimestamp",
            "savepointCreator",
        ):
            assert tombstone[key] is None, key
    assert (await bob.get_json(table.data_uri))["rows"] == []
    assert (await bob.get_json(table.diff_uri))["rows"] == []

    alice_diff, _ = await pull_all(
        api.as_user("alice"), table.diff_uri, data_etag=first["dataETag"]
    )
    assert values_of(alice_diff[0])["name"] == "soon hidden"

    blind = row(original["id"], new_etag, name="bob writes blind", scope=scope("FULL"))
    refused = await bob.push(table, [blind], hidden["dataETag"])
    outcome = refused["rows"][0]
    assert outcome["outcome"] == "IN_CONFLICT"
    assert outcome["deleted"] is True
    assert outcome["filterScope"] == HIDDEN_TOMBSTONE_SCOPE
    assert {c["value"] for c in outcome["orderedColumns"]} == {None}
    assert refused["dataETag"] == hidden["dataETag"]


@pytest.mark.parametrize("settings_overrides", [{"row_access": "device"}])
async def test_device_mode_restores_the_reference_behaviour(api: Api) -> None:
    """With SYNC_ROW_ACCESS=device every sync user sees and changes every row (item 73)."""
    hidden = row(name="secret", scope=scope("HIDDEN"))
    read_only = row(name="read only", scope=scope("READ_ONLY"))
    table, first = await _table_with(api, hidden, read_only)
    bob = api.as_user("bob")
    assert len((await bob.get_json(table.data_uri))["rows"]) == 2
    changes = [
        row(hidden["id"], first["rows"][0]["rowETag"], name="bob saw it", scope=scope("FULL")),
        row(
            read_only["id"],
            first["rows"][1]["rowETag"],
            deleted=True,
            name="read only",
            scope=scope("READ_ONLY"),
        ),
    ]
    result = await bob.push(table, changes, first["dataETag"])
    assert [o["outcome"] for o in result["rows"]] == ["SUCCESS", "SUCCESS"]
    assert result["rows"][0]["filterScope"]["defaultAccess"] == "FULL"
