"""Diffs, change sets and time-window queries (SYNC_PROTOCOL §3.21–3.24, §5.4, §5.7.2–5.7.5;
DECISIONS D7, D8; §9 items 84–93)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.api.support import (
    CHANGE_SET_LIST_KEYS,
    assert_error,
    assert_row_list_shape,
    pull_all,
    values_of,
)
from tests.helpers import Api, Table, new_id, row


@dataclass
class History:
    """A table pushed in several batches, with what every returned dataETag anchors."""

    table: Table
    #: (dataETag returned by a push, ids of the rows that push wrote) in push order.
    pushes: list[tuple[str | None, set[str]]] = field(default_factory=list)
    #: latest (rowETag, deleted, dataETagAtModification) of every row ever written.
    latest: dict[str, tuple[str, bool, str]] = field(default_factory=dict)
    #: change sets (dataETags that wrote something), in push order.
    change_sets: list[str] = field(default_factory=list)

    @property
    def data_etag(self) -> str | None:
        return self.pushes[-1][0] if self.pushes else None

    def changed_after(self, index: int) -> set[str]:
        """Ids written by the pushes after push number `index`."""
        result: set[str] = set()
        for _, ids in self.pushes[index + 1 :]:
            result |= ids
        return result


async def _push(api: Api, history: History, rows: list[dict[str, Any]]) -> dict[str, Any]:
    result = await api.push(history.table, rows, history.data_etag)
    written = set()
    for outcome in result["rows"]:
        assert outcome["outcome"] == "SUCCESS", outcome
        previous = history.latest.get(outcome["id"])
        if previous is None or previous[0] != outcome["rowETag"]:
            written.add(outcome["id"])
            history.latest[outcome["id"]] = (
                outcome["rowETag"],
                outcome["deleted"],
                outcome["dataETagAtModification"],
            )
    if written:
        history.change_sets.append(result["dataETag"])
    history.pushes.append((result["dataETag"], written))
    return dict(result)


async def _build_history(api: Api) -> tuple[History, list[dict[str, Any]]]:
    """Five pushes: inserts, updates, a delete, a no-op retry, an update of an updated row."""
    history = History(await api.create_table())
    rows = [row(name=f"r{i}", age=str(i)) for i in range(6)]
    first = await _push(api, history, rows[:3])
    etag = {o["id"]: o["rowETag"] for o in first["rows"]}
    second = await _push(
        api, history, [row(rows[0]["id"], etag[rows[0]["id"]], name="r0 v2"), *rows[3:5]]
    )
    etag.update({o["id"]: o["rowETag"] for o in second["rows"]})
    await _push(api, history, [row(rows[1]["id"], etag[rows[1]["id"]], deleted=True, name="r1")])
    await _push(api, history, rows[3:5])  # identical retry: writes nothing (D7)
    current = history.latest[rows[0]["id"]][0]
    await _push(api, history, [row(rows[0]["id"], current, name="r0 v3"), rows[5]])
    assert history.pushes[3][1] == set()
    assert history.pushes[3][0] == history.pushes[2][0]
    return history, rows


def _as_latest(rows: list[dict[str, Any]]) -> dict[str, tuple[str, bool, str]]:
    return {r["id"]: (r["rowETag"], r["deleted"], r["dataETagAtModification"]) for r in rows}


async def test_diff_since_every_data_etag_ever_returned(api: Api) -> None:
    """For every dataETag a push returned, the diff holds exactly the rows changed after it."""
    history, _ = await _build_history(api)
    assert len(history.pushes) == 5
    for index, (data_etag, _) in enumerate(history.pushes):
        for fetch_limit in (None, 1):
            rows, pages = await pull_all(
                api, history.table.diff_uri, fetch_limit, data_etag=data_etag or ""
            )
            expected = history.changed_after(index)
            ids = [r["id"] for r in rows]
            assert set(ids) == expected, (index, fetch_limit)
            assert len(ids) == len(set(ids))
            assert _as_latest(rows) == {i: history.latest[i] for i in expected}
            for page in pages:
                assert_row_list_shape(page)
                assert page["dataETag"] == history.data_etag


async def test_diff_carries_deletions_and_latest_revisions(api: Api) -> None:
    """Diff rows show deletions and the newest rowETag/dataETagAtModification (items 84, 85)."""
    history, rows = await _build_history(api)
    first_etag = history.pushes[0][0]
    diff = await api.get_json(history.table.diff_uri, params={"data_etag": first_etag or ""})
    by_id = {r["id"]: r for r in diff["rows"]}
    assert by_id[rows[1]["id"]]["deleted"] is True
    assert values_of(by_id[rows[0]["id"]])["name"] == "r0 v3"
    assert by_id[rows[0]["id"]]["dataETagAtModification"] == history.data_etag
    assert by_id[rows[0]["id"]]["selfUri"] == f"{history.table.data_uri}/{rows[0]['id']}"


async def test_diff_without_or_with_unknown_data_etag_returns_everything(api: Api) -> None:
    """No data_etag, or one the server never issued, returns every row ever written (86, D7)."""
    history, _ = await _build_history(api)
    cases: list[dict[str, Any]] = [{}, {"data_etag": new_id()}, {"data_etag": ""}]
    for params in cases:
        rows, _ = await pull_all(api, history.table.diff_uri, **params)
        assert _as_latest(rows) == history.latest, params
    assert any(deleted for _, deleted, _ in history.latest.values())
    other = await api.create_table()
    foreign = await api.push(other, [row()], None)
    rows, _ = await pull_all(api, history.table.diff_uri, data_etag=foreign["dataETag"])
    assert _as_latest(rows) == history.latest  # another table's dataETag is unknown here


async def test_diff_since_the_current_data_etag_is_empty(api: Api) -> None:
    """Diff since the table's current dataETag: no rows, dataETag reported (items 87, 88)."""
    history, _ = await _build_history(api)
    current = (await api.table_resource(history.table))["dataETag"]
    assert current == history.data_etag
    diff = await api.get_json(history.table.diff_uri, params={"data_etag": current})
    assert diff["rows"] == []
    assert diff["dataETag"] == current
    assert diff["hasMoreResults"] is False


async def test_diff_pages_reveal_concurrent_writes(api: Api) -> None:
    """A write between two pages changes the reported dataETag, so the client restarts (§1.3)."""
    history, rows = await _build_history(api)
    first = await api.get_json(history.table.diff_uri, params={"fetchLimit": "2"})
    assert first["hasMoreResults"] is True
    await _push(api, history, [row(name="late")])
    second = await api.get_json(
        history.table.diff_uri,
        params={"fetchLimit": "2", "cursor": first["webSafeResumeCursor"]},
    )
    assert second["dataETag"] != first["dataETag"]
    assert second["dataETag"] == history.data_etag
    restarted, _ = await pull_all(api, history.table.diff_uri, 2)
    assert _as_latest(restarted) == history.latest
    assert len(rows) + 1 == len(history.latest)


async def test_change_sets_listing(api: Api) -> None:
    """changeSets lists change sets after data_etag, ascending, with a sequenceValue (89, 90)."""
    history, _ = await _build_history(api)
    url = history.table.diff_uri + "/changeSets"
    everything = await api.get_json(url)
    assert set(everything) == CHANGE_SET_LIST_KEYS
    assert everything["changeSets"] == sorted(history.change_sets)
    assert everything["dataETag"] == history.data_etag
    assert isinstance(everything["sequenceValue"], str)
    assert everything["sequenceValue"]

    for index, (data_etag, _) in enumerate(history.pushes):
        listed = await api.get_json(url, params={"data_etag": data_etag or ""})
        assert data_etag is not None
        later = set(history.change_sets[history.change_sets.index(data_etag) + 1 :])
        assert listed["changeSets"] == sorted(later), index
        assert data_etag not in listed["changeSets"]
        assert listed["changeSets"] == sorted(listed["changeSets"])

    unknown = await api.get_json(url, params={"data_etag": new_id()})
    assert unknown["changeSets"] == sorted(history.change_sets)

    mark = everything["sequenceValue"]
    assert (await api.get_json(url, params={"sequence_value": mark}))["changeSets"] == []
    pushed = await _push(api, history, [row(name="after the mark")])
    after = await api.get_json(url, params={"sequence_value": mark})
    assert after["changeSets"] == [pushed["dataETag"]]
    assert after["sequenceValue"] > mark
    both = await api.get_json(
        url, params={"sequence_value": mark, "data_etag": history.pushes[0][0] or ""}
    )
    assert both["changeSets"] == [pushed["dataETag"]]


async def test_rows_of_one_change_set(api: Api) -> None:
    """changeSets/{C}: one revision per row written in C; active_only keeps current ones (91)."""
    history, rows = await _build_history(api)
    url = history.table.diff_uri + "/changeSets/"
    second_etag = history.pushes[1][0]
    written = history.pushes[1][1]

    full = await api.get_json(url + str(second_etag))
    assert_row_list_shape(full)
    assert {r["id"] for r in full["rows"]} == written
    assert len(full["rows"]) == len(written)
    assert {r["dataETagAtModification"] for r in full["rows"]} == {second_etag}
    r0 = next(r for r in full["rows"] if r["id"] == rows[0]["id"])
    assert values_of(r0)["name"] == "r0 v2"  # the revision of that change set, not the latest
    assert full["dataETag"] == history.data_etag

    active = await api.get_json(url + str(second_etag), params={"active_only": "TRUE"})
    # r0 changed again later, so only the two rows inserted by that change set remain current.
    assert {r["id"] for r in active["rows"]} == {rows[3]["id"], rows[4]["id"]}
    for item in active["rows"]:
        assert item["rowETag"] == history.latest[item["id"]][0]
    not_active = await api.get_json(url + str(second_etag), params={"active_only": "yes"})
    assert {r["id"] for r in not_active["rows"]} == written

    delete_etag = history.pushes[2][0]
    deletion = await api.get_json(url + str(delete_etag))
    assert [(r["id"], r["deleted"]) for r in deletion["rows"]] == [(rows[1]["id"], True)]

    paged, pages = await pull_all(api, url + str(history.pushes[0][0]), 1)
    assert {r["id"] for r in paged} == history.pushes[0][1]
    assert len(pages) == 3

    assert (await api.get_json(url + new_id()))["rows"] == []


def _stamp(moment: datetime) -> str:
    """`yyyy-MM-ddTHH:mm:ss.SSSSSSSSS`, nine fraction digits, UTC (§3.24)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"


async def test_savepoint_timestamp_windows(api: Api) -> None:
    """query/savepointTimestamp returns the revisions inside [startTime, endTime] (item 92)."""
    table = await api.create_table()
    stamps = [f"2024-0{m}-01T12:00:00.000000000" for m in (1, 2, 3, 4)]
    rows = []
    data_etag = None
    for stamp in stamps:
        body = row(name=stamp)
        body["savepointTimestamp"] = stamp
        rows.append(body)
        data_etag = (await api.push(table, [body], data_etag))["dataETag"]
    url = table.diff_uri.rsplit("/", 1)[0] + "/query/savepointTimestamp"

    async def names(**params: Any) -> list[str]:
        found, pages = await pull_all(api, url, **params)
        for page in pages:
            assert_row_list_shape(page)
            assert page["dataETag"] == data_etag
        return [values_of(r)["name"] or "" for r in found]

    assert await names(startTime="2024-01-01T00:00:00.000000000") == stamps
    assert await names(startTime=stamps[1]) == stamps[1:]
    assert await names(startTime="2024-01-15T00:00:00.000000000", endTime=stamps[2]) == stamps[1:3]
    assert await names(startTime=stamps[0], endTime="2024-02-15T00:00:00.000000000") == stamps[:2]
    paged, pages = await pull_all(api, url, 1, startTime=stamps[0])
    assert [values_of(r)["name"] for r in paged] == stamps
    assert len(pages) == 4

    empty = await api.get_json(url, params={"startTime": "2030-01-01T00:00:00.000000000"})
    assert empty["rows"] == []
    assert empty["hasMoreResults"] is False
    assert empty["webSafeResumeCursor"] is None


async def test_last_update_date_windows(api: Api) -> None:
    """query/lastUpdateDate compares the server time each revision was recorded (§3.24)."""
    table = await api.create_table()
    url = table.diff_uri.rsplit("/", 1)[0] + "/query/lastUpdateDate"
    before = datetime.now(UTC)
    early = await api.push(table, [row(name="early")], None)
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await api.push(table, [row(name="late")], early["dataETag"])
    after = datetime.now(UTC)

    async def names(**params: Any) -> list[str | None]:
        found, _ = await pull_all(api, url, **params)
        return [values_of(r)["name"] for r in found]

    assert await names(startTime=_stamp(before)) == ["early", "late"]
    assert await names(startTime=_stamp(middle)) == ["late"]
    assert await names(startTime=_stamp(before), endTime=_stamp(middle)) == ["early"]
    empty = await api.get_json(url, params={"startTime": _stamp(after)})
    assert empty["rows"] == []
    assert empty["hasMoreResults"] is False


async def test_time_queries_need_a_valid_start_time(api: Api) -> None:
    """A missing or unparsable startTime is 400 BAD_REQUEST (item 93)."""
    table = await api.create_table()
    await api.push(table, [row()], None)
    base = table.diff_uri.rsplit("/", 1)[0] + "/query/"
    for kind in ("lastUpdateDate", "savepointTimestamp"):
        await assert_error(await api.request("GET", base + kind), 400, "BAD_REQUEST")
        await assert_error(
            await api.request("GET", base + kind, params={"startTime": ""}), 400, "BAD_REQUEST"
        )
    await assert_error(
        await api.request("GET", base + "lastUpdateDate", params={"startTime": "yesterday"}),
        400,
        "BAD_REQUEST",
    )
