"""Row writes and reads (SYNC_PROTOCOL §3.18–3.20, §5.2–5.6, §5.7.1, §5.10; DECISIONS D3, D5,
D7; §9 items 54–72, 74, 76–83)."""

from __future__ import annotations

from typing import Any

from tests.api.support import (
    DEFAULT_SCOPE,
    assert_error,
    assert_outcome_list_shape,
    assert_row_list_shape,
    assert_row_resource_shape,
    is_uuid_etag,
    pull_all,
    snapshot,
    values_of,
)
from tests.helpers import CENSUS_RETAINED, Api, Table, new_id, row

TRIMMED = (
    "createUser",
    "lastUpdateUser",
    "formId",
    "locale",
    "savepointType",
    "savepointTimestamp",
    "savepointCreator",
    "orderedColumns",
    "selfUri",
)


def _partial(row_id: str, row_etag: str | None, **values: str | None) -> dict[str, Any]:
    """A row carrying only the given columns (Android always sends all; the API allows less)."""
    body = row(row_id, row_etag)
    body["orderedColumns"] = [{"column": c, "value": v} for c, v in sorted(values.items())]
    return body


def _same_server_fields(stored: dict[str, Any], sent: dict[str, Any]) -> None:
    for key in ("formId", "locale", "savepointType", "savepointTimestamp", "savepointCreator"):
        assert stored[key] == sent[key], key


async def _seed(api: Api, *rows: dict[str, Any]) -> tuple[Table, dict[str, Any]]:
    table = await api.create_table()
    result = await api.push(table, list(rows), None)
    assert [o["outcome"] for o in result["rows"]] == ["SUCCESS"] * len(rows)
    return table, result


async def _get_row(api: Api, table: Table, row_id: str, status: int = 200) -> Any:
    return await api.get_json(f"{table.data_uri}/{row_id}", status=status)


# -- the dataETag precondition --------------------------------------------------------------


async def test_stale_data_etag_is_409_and_changes_nothing(api: Api) -> None:
    """A RowList whose dataETag is not the table's is 409 ETAG_MISMATCH, no change (item 54)."""
    original = row(name="Ana", age="30")
    table, first = await _seed(api, original)
    before = await snapshot(api, table)
    update = row(original["id"], first["rows"][0]["rowETag"], name="Changed")
    for stale in (new_id(), None, ""):
        response = await api.request(
            "PUT", table.data_uri, json_body={"rows": [update, row(name="new")], "dataETag": stale}
        )
        await assert_error(response, 409, "ETAG_MISMATCH")
    assert await snapshot(api, table) == before
    assert values_of(await _get_row(api, table, original["id"]))["name"] == "Ana"

    fresh = await api.create_table()
    response = await api.request(
        "PUT", fresh.data_uri, json_body={"rows": [row()], "dataETag": first["dataETag"]}
    )
    await assert_error(response, 409, "ETAG_MISMATCH")
    assert (await api.table_resource(fresh))["dataETag"] is None


async def test_first_push_inserts_rows_in_request_order(api: Api) -> None:
    """A fresh table takes dataETag null; one trimmed SUCCESS per row, in order (55–58)."""
    table = await api.create_table()
    rows = [row(name=f"p{i}", age=str(i)) for i in range(5)]
    result = await api.push(table, rows, None)
    assert_outcome_list_shape(result)
    assert is_uuid_etag(result["dataETag"])
    assert result["tableUri"] == table.resource["selfUri"]
    assert [o["id"] for o in result["rows"]] == [r["id"] for r in rows]
    for outcome in result["rows"]:
        assert outcome["outcome"] == "SUCCESS"
        assert is_uuid_etag(outcome["rowETag"])
        assert outcome["dataETagAtModification"] == result["dataETag"]
        assert outcome["deleted"] is False
        assert outcome["filterScope"] == rows[0]["filterScope"]
        for key in TRIMMED:
            assert outcome[key] is None, key
    assert len({o["rowETag"] for o in result["rows"]}) == len(rows)
    assert (await api.table_resource(table))["dataETag"] == result["dataETag"]
    listing = await api.get_json(table.data_uri)
    assert listing["dataETag"] == result["dataETag"]
    etags = {r["id"]: r["rowETag"] for r in listing["rows"]}
    assert etags == {o["id"]: o["rowETag"] for o in result["rows"]}


async def test_empty_push_keeps_the_data_etag(api: Api) -> None:
    """A push that writes nothing returns the unchanged dataETag (D7), null on a fresh table."""
    table = await api.create_table()
    empty = await api.push(table, [], None)
    assert empty == {"rows": [], "dataETag": None, "tableUri": table.resource["selfUri"]}
    _, first = await _seed(api, row())
    table2 = await api.create_table()
    seeded = await api.push(table2, [row()], None)
    again = await api.push(table2, [], seeded["dataETag"])
    assert again["dataETag"] == seeded["dataETag"]
    assert first["dataETag"] != seeded["dataETag"]


async def test_null_id_gets_a_server_uuid(api: Api) -> None:
    """A row sent with `id: null` is inserted under a server-minted `uuid:` id (item 59)."""
    table = await api.create_table()
    body = row(name="anonymous id")
    body["id"] = None
    result = await api.push(table, [body, row(name="named")], None)
    minted = result["rows"][0]["id"]
    assert is_uuid_etag(minted)
    assert result["rows"][0]["outcome"] == "SUCCESS"
    stored = await _get_row(api, table, minted)
    assert values_of(stored)["name"] == "anonymous id"
    assert stored["rowETag"] == result["rows"][0]["rowETag"]


# -- updates and conflicts ------------------------------------------------------------------


async def test_update_with_current_row_etag(api: Api) -> None:
    """An update naming the current rowETag succeeds with a new rowETag (item 60)."""
    original = row(name="Ana", age="30")
    table, first = await _seed(api, original)
    old_etag = first["rows"][0]["rowETag"]
    update = row(original["id"], old_etag, name="Ana Maria", age="31")
    update["savepointTimestamp"] = "2024-06-01T10:00:00.000000000"
    result = await api.push(table, [update], first["dataETag"])
    outcome = result["rows"][0]
    assert outcome["outcome"] == "SUCCESS"
    assert outcome["rowETag"] != old_etag
    assert is_uuid_etag(outcome["rowETag"])
    assert result["dataETag"] != first["dataETag"]
    assert outcome["dataETagAtModification"] == result["dataETag"]
    stored = await _get_row(api, table, original["id"])
    assert values_of(stored)["name"] == "Ana Maria"
    assert values_of(stored)["age"] == "31"
    assert stored["rowETag"] == outcome["rowETag"]
    assert stored["savepointTimestamp"] == "2024-06-01T10:00:00.000000000"


async def test_stale_row_etag_with_other_values_is_in_conflict(api: Api) -> None:
    """A stale rowETag with different values: IN_CONFLICT with the full server row (item 61)."""
    original = row(name="Ana", age="30", location_latitude="38.7")
    table, first = await _seed(api, original)
    before = await snapshot(api, table)
    for stale in (new_id(), None):
        result = await api.push(
            table, [row(original["id"], stale, name="Other", age="30")], first["dataETag"]
        )
        assert_outcome_list_shape(result)
        conflict = result["rows"][0]
        assert conflict["outcome"] == "IN_CONFLICT"
        server = await _get_row(api, table, original["id"])
        assert {k: v for k, v in conflict.items() if k not in ("outcome", "selfUri")} == {
            k: v for k, v in server.items() if k != "selfUri"
        }
        assert [c["column"] for c in conflict["orderedColumns"]] == CENSUS_RETAINED
        assert values_of(conflict)["name"] == "Ana"
        assert conflict["createUser"] == "admin"
        assert conflict["filterScope"] == original["filterScope"]
        assert result["dataETag"] == first["dataETag"]
    assert await snapshot(api, table) == before


async def test_identical_values_with_stale_row_etag_succeed_without_a_revision(api: Api) -> None:
    """Stale or null rowETag but identical values: SUCCESS, server's rowETag, nothing written."""
    original = row(name="Ana", age="30", location_accuracy="4.5")
    table, first = await _seed(api, original)
    server_etag = first["rows"][0]["rowETag"]
    change_sets = await api.get_json(table.diff_uri + "/changeSets")
    before = await snapshot(api, table)
    for stale in (None, new_id()):
        same = row(original["id"], stale, name="Ana", age="30", location_accuracy="4.5")
        result = await api.push(table, [same], first["dataETag"])
        outcome = result["rows"][0]
        assert outcome["outcome"] == "SUCCESS"
        assert outcome["rowETag"] == server_etag
        assert outcome["dataETagAtModification"] == first["dataETag"]
        assert result["dataETag"] == first["dataETag"]
    assert await snapshot(api, table) == before
    assert (await api.get_json(table.diff_uri, params={"data_etag": first["dataETag"]}))[
        "rows"
    ] == []
    after = await api.get_json(table.diff_uri + "/changeSets")
    assert after["changeSets"] == change_sets["changeSets"]


async def test_numbers_compare_numerically_other_types_literally(api: Api) -> None:
    """`9.8` equals `9.80` in a number column; integers and strings compare as text (item 63)."""
    original = row(name="Ana", age="34", location_accuracy="9.8", location_latitude="1.0E-5")
    table, first = await _seed(api, original)
    etag = first["rows"][0]["rowETag"]
    same_numbers = row(
        original["id"],
        None,
        name="Ana",
        age="34",
        location_accuracy="9.80",
        location_latitude="0.00001",
    )
    result = await api.push(table, [same_numbers], first["dataETag"])
    assert result["rows"][0]["outcome"] == "SUCCESS"
    assert result["rows"][0]["rowETag"] == etag
    assert result["dataETag"] == first["dataETag"]
    stored = values_of(await _get_row(api, table, original["id"]))
    assert stored["location_accuracy"] == "9.8"
    assert stored["location_latitude"] == "1.0E-5"

    for changed in (
        {"age": "034"},
        {"name": "ana"},
        {"name": "Ana "},
        {"location_accuracy": "9.81"},
    ):
        values: dict[str, Any] = {
            "name": "Ana",
            "age": "34",
            "location_accuracy": "9.8",
            "location_latitude": "1.0E-5",
            **changed,
        }
        result = await api.push(table, [row(original["id"], None, **values)], first["dataETag"])
        assert result["rows"][0]["outcome"] == "IN_CONFLICT", changed


async def test_value_order_in_request_does_not_matter(api: Api) -> None:
    """Incoming orderedColumns are compared sorted, whatever their order (quirk 8.26)."""
    original = row(name="Ana", age="34")
    table, first = await _seed(api, original)
    shuffled = row(original["id"], None, name="Ana", age="34")
    shuffled["orderedColumns"].reverse()
    result = await api.push(table, [shuffled], first["dataETag"])
    assert result["rows"][0]["outcome"] == "SUCCESS"
    assert result["rows"][0]["rowETag"] == first["rows"][0]["rowETag"]


async def test_metadata_differences_are_conflicts(api: Api) -> None:
    """formId, locale, savepoint fields and filterScope are significant fields (§5.5)."""
    original = row(name="Ana")
    table, first = await _seed(api, original)
    changes: list[dict[str, Any]] = [
        {"formId": "other"},
        {"locale": "pt_PT"},
        {"savepointType": "INCOMPLETE"},
        {"savepointTimestamp": "2025-01-01T00:00:00.000000000"},
        {"savepointCreator": "username:bob"},
        {"filterScope": {**original["filterScope"], "defaultAccess": "MODIFY"}},
    ]
    for change in changes:
        body = {**row(original["id"], None, name="Ana"), **change}
        result = await api.push(table, [body], first["dataETag"])
        assert result["rows"][0]["outcome"] == "IN_CONFLICT", change
    assert result["dataETag"] == first["dataETag"]


# -- deletes --------------------------------------------------------------------------------


async def test_delete_with_current_row_etag(api: Api) -> None:
    """A delete with the current rowETag: SUCCESS, deleted, new rowETag; a tombstone stays."""
    keep, drop = row(name="keep"), row(name="drop")
    table, first = await _seed(api, keep, drop)
    old_etag = first["rows"][1]["rowETag"]
    # Android sends a delete with the row's values, so a retried delete is identical.
    delete = row(drop["id"], old_etag, deleted=True, name="drop")
    result = await api.push(table, [delete], first["dataETag"])
    outcome = result["rows"][0]
    assert outcome["outcome"] == "SUCCESS"
    assert outcome["deleted"] is True
    assert is_uuid_etag(outcome["rowETag"])
    assert outcome["rowETag"] != old_etag
    listing = await api.get_json(table.data_uri)
    assert [r["id"] for r in listing["rows"]] == [keep["id"]]
    tombstone = await _get_row(api, table, drop["id"])
    assert tombstone["deleted"] is True
    assert tombstone["rowETag"] == outcome["rowETag"]
    assert values_of(tombstone)["name"] == "drop"
    diff = await api.get_json(table.diff_uri, params={"data_etag": first["dataETag"]})
    assert [(r["id"], r["deleted"]) for r in diff["rows"]] == [(drop["id"], True)]

    retry = await api.push(table, [delete], result["dataETag"])
    assert retry["rows"][0]["outcome"] == "SUCCESS"
    assert retry["rows"][0]["deleted"] is True
    assert retry["rows"][0]["rowETag"] == outcome["rowETag"]
    assert retry["dataETag"] == result["dataETag"]
    other_values = await api.push(table, [{**delete, "formId": "other"}], result["dataETag"])
    assert other_values["rows"][0]["outcome"] == "IN_CONFLICT"
    assert other_values["rows"][0]["deleted"] is True


async def test_delete_with_stale_row_etag_is_in_conflict(api: Api) -> None:
    """Deleting a live row with a stale rowETag is IN_CONFLICT and deletes nothing (item 65)."""
    original = row(name="Ana")
    table, first = await _seed(api, original)
    before = await snapshot(api, table)
    result = await api.push(
        table, [row(original["id"], new_id(), deleted=True, name="Ana")], first["dataETag"]
    )
    conflict = result["rows"][0]
    assert conflict["outcome"] == "IN_CONFLICT"
    assert conflict["deleted"] is False
    assert values_of(conflict)["name"] == "Ana"
    assert await snapshot(api, table) == before


async def test_delete_of_an_unknown_row_succeeds_once(api: Api) -> None:
    """Deleting a row the server never had: exactly one SUCCESS, deleted (item 66, D3)."""
    table, first = await _seed(api, row(name="other"))
    before = await snapshot(api, table)
    ghost = row(new_id(), new_id(), deleted=True)
    fresh = row(name="fresh")
    result = await api.push(table, [ghost, fresh], first["dataETag"])
    assert len(result["rows"]) == 2
    assert [o["id"] for o in result["rows"]] == [ghost["id"], fresh["id"]]
    assert result["rows"][0]["outcome"] == "SUCCESS"
    assert result["rows"][0]["deleted"] is True
    await assert_error(
        await api.request("GET", f"{table.data_uri}/{ghost['id']}"), 404, "RESOURCE_NOT_FOUND"
    )
    after = await snapshot(api, table)
    assert sorted(set(after[1]) - set(before[1]))[0][0] == fresh["id"]
    assert len(after[1]) == len(before[1]) + 1

    only_ghost = await api.push(table, [row(new_id(), None, deleted=True)], result["dataETag"])
    assert [(o["outcome"], o["deleted"]) for o in only_ghost["rows"]] == [("SUCCESS", True)]
    assert only_ghost["dataETag"] == result["dataETag"]


# -- scope, partial rows, audit fields ------------------------------------------------------


async def test_filter_scope_default_and_inheritance(api: Api) -> None:
    """No filterScope: inserts get FULL, updates keep the stored scope (items 70, 71)."""
    table = await api.create_table()
    absent = row(name="absent")
    del absent["filterScope"]
    null_scope = row(name="null")
    null_scope["filterScope"] = None
    scoped = row(
        name="scoped",
        scope={
            "defaultAccess": "MODIFY",
            "rowOwner": "username:alice",
            "groupReadOnly": "GROUP_REGION_SOUTH",
            "groupModify": "GROUP_REGION_NORTH",
            "groupPrivileged": "GROUP_BOSSES",
        },
    )
    null_access = row(name="null access", scope={**DEFAULT_SCOPE, "defaultAccess": None})
    first = await api.push(table, [absent, null_scope, scoped, null_access], None)
    assert [o["filterScope"] for o in first["rows"]] == [
        DEFAULT_SCOPE,
        DEFAULT_SCOPE,
        scoped["filterScope"],
        DEFAULT_SCOPE,
    ]
    assert (await _get_row(api, table, absent["id"]))["filterScope"] == DEFAULT_SCOPE

    update = row(scoped["id"], first["rows"][2]["rowETag"], name="scoped 2")
    update["filterScope"] = None
    second = await api.push(table, [update], first["dataETag"])
    assert second["rows"][0]["outcome"] == "SUCCESS"
    assert second["rows"][0]["filterScope"] == scoped["filterScope"]
    assert (await _get_row(api, table, scoped["id"]))["filterScope"] == scoped["filterScope"]


async def test_omitted_column_keeps_its_value(api: Api) -> None:
    """An update that leaves a retained column out keeps its stored value (item 72)."""
    original = row(name="Ana", age="30", location_latitude="38.7")
    table, first = await _seed(api, original)
    update = _partial(original["id"], first["rows"][0]["rowETag"], name="Ana B")
    result = await api.push(table, [update], first["dataETag"])
    assert result["rows"][0]["outcome"] == "SUCCESS"
    stored = values_of(await _get_row(api, table, original["id"]))
    assert stored == {
        "age": "30",
        "location_accuracy": None,
        "location_altitude": None,
        "location_latitude": "38.7",
        "location_longitude": None,
        "name": "Ana B",
    }
    cleared = _partial(original["id"], result["rows"][0]["rowETag"], age=None)
    result = await api.push(table, [cleared], result["dataETag"])
    assert values_of(await _get_row(api, table, original["id"]))["age"] is None


async def test_create_user_and_last_update_user(api: Api) -> None:
    """createUser is the inserting login; lastUpdateUser the last writer's login (item 74)."""
    table = await api.create_table()
    alice, bob = api.as_user("alice"), api.as_user("bob")
    original = row(name="Ana")
    first = await alice.push(table, [original], None)
    stored = await _get_row(api, table, original["id"])
    assert (stored["createUser"], stored["lastUpdateUser"]) == ("alice", "alice")
    second = await bob.push(
        table,
        [row(original["id"], first["rows"][0]["rowETag"], name="Ana (bob)")],
        first["dataETag"],
    )
    assert second["rows"][0]["outcome"] == "SUCCESS"
    stored = await _get_row(api, table, original["id"])
    assert (stored["createUser"], stored["lastUpdateUser"]) == ("alice", "bob")
    spoofed = row(original["id"], second["rows"][0]["rowETag"], name="spoof")
    spoofed["createUser"] = "mallory"
    spoofed["lastUpdateUser"] = "mallory"
    await alice.push(table, [spoofed], second["dataETag"])
    stored = await _get_row(api, table, original["id"])
    assert (stored["createUser"], stored["lastUpdateUser"]) == ("alice", "alice")


async def test_null_savepoint_timestamp_is_accepted(api: Api) -> None:
    """A row without savepointTimestamp is stored, not refused (quirk 8.21)."""
    table = await api.create_table()
    body = row(name="no time")
    body["savepointTimestamp"] = None
    body["savepointType"] = None
    result = await api.push(table, [body], None)
    assert result["rows"][0]["outcome"] == "SUCCESS"
    stored = await _get_row(api, table, body["id"])
    assert stored["savepointTimestamp"] is None
    assert stored["savepointType"] is None


# -- retries and duplicates -----------------------------------------------------------------


async def test_retry_of_an_applied_push(api: Api) -> None:
    """A push whose answer was lost: 409 with the old dataETag, then SUCCESS, nothing written."""
    table, seeded = await _seed(api, row(name="base"))
    base_etag = seeded["rows"][0]["rowETag"]
    base_id = seeded["rows"][0]["id"]
    batch = [
        row(name="one"),
        row(name="two"),
        row(base_id, base_etag, name="base updated"),
    ]
    applied = await api.push(table, batch, seeded["dataETag"])
    assert [o["outcome"] for o in applied["rows"]] == ["SUCCESS"] * 3
    before = await snapshot(api, table)
    change_sets = await api.get_json(table.diff_uri + "/changeSets")

    lost = await api.request(
        "PUT", table.data_uri, json_body={"rows": batch, "dataETag": seeded["dataETag"]}
    )
    await assert_error(lost, 409, "ETAG_MISMATCH")

    retried = await api.push(table, batch, applied["dataETag"])
    assert [o["outcome"] for o in retried["rows"]] == ["SUCCESS"] * 3
    assert [o["rowETag"] for o in retried["rows"]] == [o["rowETag"] for o in applied["rows"]]
    assert [o["id"] for o in retried["rows"]] == [o["id"] for o in applied["rows"]]
    assert retried["dataETag"] == applied["dataETag"]
    assert await snapshot(api, table) == before
    assert await api.get_json(table.diff_uri + "/changeSets") == change_sets


async def test_duplicate_ids_in_one_request(api: Api) -> None:
    """A row id twice in one push: one outcome each, the second sees the first's result."""
    table = await api.create_table()
    twin = row(name="same")
    result = await api.push(table, [twin, dict(twin)], None)
    assert [(o["id"], o["outcome"]) for o in result["rows"]] == [
        (twin["id"], "SUCCESS"),
        (twin["id"], "SUCCESS"),
    ]
    assert result["rows"][0]["rowETag"] == result["rows"][1]["rowETag"]
    history, _ = await pull_all(api, table.diff_uri)
    assert [r["id"] for r in history] == [twin["id"]]

    other = row(name="first")
    clash = row(other["id"], None, name="second")
    result = await api.push(table, [other, clash], result["dataETag"])
    assert [(o["id"], o["outcome"]) for o in result["rows"]] == [
        (other["id"], "SUCCESS"),
        (other["id"], "IN_CONFLICT"),
    ]
    assert values_of(result["rows"][1])["name"] == "first"
    assert values_of(await _get_row(api, table, other["id"]))["name"] == "first"

    chained = row(other["id"], result["rows"][0]["rowETag"], name="second")
    deleted = await api.push(
        table, [chained, {**chained, "rowETag": None, "deleted": True}], result["dataETag"]
    )
    assert [o["outcome"] for o in deleted["rows"]] == ["SUCCESS", "IN_CONFLICT"]
    assert values_of(await _get_row(api, table, other["id"]))["name"] == "second"


# -- reads ----------------------------------------------------------------------------------


async def test_never_written_table_has_no_rows(api: Api) -> None:
    """GET rows of a never-written table: `rows: []`, `dataETag: null` (item 78)."""
    table = await api.create_table()
    listing = await api.get_json(table.data_uri)
    assert_row_list_shape(listing)
    assert listing["rows"] == []
    assert listing["dataETag"] is None
    assert listing["hasMoreResults"] is False
    assert listing["hasPriorResults"] is False
    assert listing["tableUri"] == table.resource["selfUri"]
    for cursor in ("webSafeRefetchCursor", "webSafeBackwardCursor", "webSafeResumeCursor"):
        assert listing[cursor] is None, cursor


async def test_get_rows_lists_live_rows_with_self_uri(api: Api) -> None:
    """GET rows returns every live row, no tombstones, each with its selfUri (item 77)."""
    rows = [row(name=f"r{i}") for i in range(4)]
    table, first = await _seed(api, *rows)
    await api.push(
        table, [row(rows[1]["id"], first["rows"][1]["rowETag"], deleted=True)], first["dataETag"]
    )
    listing = await api.get_json(table.data_uri)
    assert_row_list_shape(listing)
    assert sorted(r["id"] for r in listing["rows"]) == sorted(
        r["id"] for r in rows if r is not rows[1]
    )
    for item in listing["rows"]:
        assert item["deleted"] is False
        assert item["selfUri"] == f"{table.data_uri}/{item['id']}"


async def test_small_pages_return_every_row_once(api: Api) -> None:
    """fetchLimit=2 with resume cursors returns each live row once; hasPriorResults (79, 80)."""
    rows = [row(name=f"r{i}") for i in range(7)]
    table, _ = await _seed(api, *rows)
    collected, pages = await pull_all(api, table.data_uri, fetch_limit=2)
    assert [r["id"] for r in collected] == [r["id"] for r in rows]  # creation order
    assert len(pages) == 4
    assert [p["hasPriorResults"] for p in pages] == [False, True, True, True]
    assert [p["hasMoreResults"] for p in pages] == [True, True, True, False]
    assert pages[0]["webSafeRefetchCursor"] is None
    for page in pages[1:]:
        assert page["webSafeRefetchCursor"]
    assert len({p["dataETag"] for p in pages}) == 1


async def test_cursors_continue_gap_free_and_walk_backwards(api: Api) -> None:
    """The last page's resume cursor later yields exactly the new rows; backward cursors walk
    back one page; an empty page echoes its cursor (§2.8)."""
    rows = [row(name=f"r{i}") for i in range(5)]
    table, first = await _seed(api, *rows)
    _, pages = await pull_all(api, table.data_uri, fetch_limit=2)
    last = pages[-1]
    assert [len(p["rows"]) for p in pages] == [2, 2, 1]
    assert last["webSafeResumeCursor"]
    empty = await api.get_json(
        table.data_uri, params={"fetchLimit": "2", "cursor": last["webSafeResumeCursor"]}
    )
    assert empty["rows"] == []
    assert empty["hasMoreResults"] is False
    assert empty["hasPriorResults"] is True
    assert empty["webSafeResumeCursor"] == last["webSafeResumeCursor"]
    assert empty["webSafeBackwardCursor"] is None

    backward = await api.get_json(
        table.data_uri, params={"fetchLimit": "2", "cursor": last["webSafeBackwardCursor"]}
    )
    assert [r["id"] for r in backward["rows"]] == [r["id"] for r in pages[1]["rows"]]

    newer = [row(name="n1"), row(name="n2")]
    await api.push(table, newer, first["dataETag"])
    resumed, _ = await pull_all(
        api, table.data_uri, fetch_limit=2, cursor=last["webSafeResumeCursor"]
    )
    assert [r["id"] for r in resumed] == [r["id"] for r in newer]


async def test_paging_across_5000_rows(api: Api) -> None:
    """5,000 rows pushed in batches of 500 page back exactly once with fetchLimit 1000."""
    table = await api.create_table()
    data_etag = None
    expected: dict[str, str] = {}
    for batch in range(10):
        rows = [row(name=f"b{batch}-{i}", age=str(i)) for i in range(500)]
        result = await api.push(table, rows, data_etag)
        assert len(result["rows"]) == 500
        assert {o["outcome"] for o in result["rows"]} == {"SUCCESS"}
        data_etag = result["dataETag"]
        expected.update({o["id"]: o["rowETag"] for o in result["rows"]})

    collected, pages = await pull_all(api, table.data_uri, fetch_limit=1000)
    assert len(pages) == 5
    assert [len(p["rows"]) for p in pages] == [1000] * 5
    assert [p["hasPriorResults"] for p in pages] == [False, True, True, True, True]
    assert {p["dataETag"] for p in pages} == {data_etag}
    assert len(collected) == 5000
    assert {r["id"]: r["rowETag"] for r in collected} == expected

    history, diff_pages = await pull_all(api, table.diff_uri, fetch_limit=1000)
    assert len(history) == 5000
    assert {r["id"]: r["rowETag"] for r in history} == expected
    assert {p["dataETag"] for p in diff_pages} == {data_etag}
    change_sets = await api.get_json(table.diff_uri + "/changeSets")
    assert len(change_sets["changeSets"]) == 10


async def test_single_row_including_tombstones(api: Api) -> None:
    """GET rows/{id} returns the row, also once deleted; an unknown id is 404 (item 81)."""
    original = row(name="Ana")
    table, first = await _seed(api, original)
    stored = await _get_row(api, table, original["id"])
    assert_row_resource_shape(stored)
    assert stored["id"] == original["id"]
    assert stored["selfUri"] == f"{table.data_uri}/{original['id']}"
    _same_server_fields(stored, original)
    assert stored["dataETagAtModification"] == first["dataETag"]
    await api.push(table, [row(original["id"], stored["rowETag"], deleted=True)], first["dataETag"])
    tombstone = await _get_row(api, table, original["id"])
    assert tombstone["deleted"] is True
    error = await assert_error(
        await api.request("GET", f"{table.data_uri}/{new_id()}"), 404, "RESOURCE_NOT_FOUND"
    )
    assert error["message"]


async def test_ordered_columns_hold_every_retained_column(api: Api) -> None:
    """Rows carry every retained column once, sorted; non-retained parents never (82, 83)."""
    table = await api.create_table()
    body = _partial(new_id(), None, name="Ana", location_latitude="1.5")
    body["orderedColumns"].append({"column": "location", "value": "ignored"})
    result = await api.push(table, [body], None)
    assert result["rows"][0]["outcome"] == "SUCCESS"
    stored = await _get_row(api, table, body["id"])
    assert [c["column"] for c in stored["orderedColumns"]] == CENSUS_RETAINED
    assert values_of(stored) == {
        "age": None,
        "location_accuracy": None,
        "location_altitude": None,
        "location_latitude": "1.5",
        "location_longitude": None,
        "name": "Ana",
    }


async def test_values_are_returned_byte_identical(api: Api) -> None:
    """Values come back exactly as sent: long, unicode, exponent, big numbers (D5, quirk 8.11)."""
    table = await api.create_table()
    long_text = "".join(chr(0x41 + i % 26) for i in range(5000))
    samples: list[dict[str, Any]] = [
        {"name": long_text, "location_latitude": "1.0E-5"},
        {"name": "ção 日本語 مرحبا 👩‍👩‍👧 e\u0301 \u200b", "location_accuracy": "3.5000"},
        {"name": 'quote " backslash \\ newline \n tab \t', "location_altitude": "-0.0"},
        {"name": "  padded  ", "location_longitude": "123456789012345678901234567890.123456789"},
        {"name": "", "age": "2147483648"},
        {"name": "null", "age": "-9223372036854775808", "location_latitude": "1E+300"},
        {"name": "<b>&amp;</b>", "location_accuracy": "NaN", "location_altitude": "-Infinity"},
        {"name": "x" * 256, "age": "+7", "location_latitude": ".5"},
        {"name": "nul \u0000 inside", "age": "-0"},
    ]
    rows = [row(**values) for values in samples]
    rows[1]["formId"] = "formulário"
    rows[1]["savepointCreator"] = "username:zoë"
    result = await api.push(table, rows, None)
    assert [o["outcome"] for o in result["rows"]] == ["SUCCESS"] * len(rows)
    listing = await api.get_json(table.data_uri)
    by_id = {r["id"]: r for r in listing["rows"]}
    for sent in rows:
        stored = by_id[sent["id"]]
        assert stored["orderedColumns"] == sent["orderedColumns"]
        _same_server_fields(stored, sent)
    history, _ = await pull_all(api, table.diff_uri)
    for stored in history:
        sent = next(r for r in rows if r["id"] == stored["id"])
        assert stored["orderedColumns"] == sent["orderedColumns"]


async def test_row_ids_with_unusual_characters(api: Api) -> None:
    """Row ids with spaces, unicode and reserved characters round-trip through selfUri."""
    table = await api.create_table()
    ids = [
        "plain-id_1",
        "with space",
        "ümlaut:ß",
        "semi;colon&amp=1",
        "Case",
        "case",
        "a/b",
        "a",
        "a ",
        "50%",
        "q?x=1#f",
    ]
    result = await api.push(table, [row(i, name=i) for i in ids], None)
    assert [o["id"] for o in result["rows"]] == ids
    assert {o["outcome"] for o in result["rows"]} == {"SUCCESS"}
    listing = await api.get_json(table.data_uri)
    assert sorted(r["id"] for r in listing["rows"]) == sorted(ids)
    for item in listing["rows"]:
        fetched = await api.get_json(item["selfUri"])
        assert fetched["id"] == item["id"]
        assert values_of(fetched)["name"] == item["id"]
