"""End to end with the real ODK-X sample app `geotaggerTest`: its definition.csv becomes the
table, its CSV exports become rows, and what the server returns is what the app holds
(SYNC_PROTOCOL §5.9–5.11, §5.7.2; DECISIONS D5, D12)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.api.support import pull_all
from tests.conftest import shared_or_skip
from tests.helpers import Api, Table

TABLE_ID = "geotagger"

#: CSV metadata column → Row property (§5.9); the access columns form the filterScope.
ROW_FIELDS = {
    "_id": "id",
    "_row_etag": "rowETag",
    "_form_id": "formId",
    "_locale": "locale",
    "_savepoint_type": "savepointType",
    "_savepoint_timestamp": "savepointTimestamp",
    "_savepoint_creator": "savepointCreator",
}
SCOPE_FIELDS = {
    "_default_access": "defaultAccess",
    "_row_owner": "rowOwner",
    "_group_read_only": "groupReadOnly",
    "_group_modify": "groupModify",
    "_group_privileged": "groupPrivileged",
}


@pytest.fixture
def sample() -> Path:
    return shared_or_skip("data", "odkx-sample", "geotaggerTest")


def _records(path: Path) -> list[dict[str, str]]:
    """The sample CSVs use old Mac line ends (CR); the csv module reads them with newline=''."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _columns(sample: Path) -> list[dict[str, Any]]:
    return [
        {
            "elementKey": r["_element_key"],
            "elementName": r["_element_name"],
            "elementType": r["_element_type"],
            "listChildElementKeys": r["_list_child_element_keys"],
        }
        for r in _records(sample / "definition.csv")
    ]


def _row(record: dict[str, str]) -> dict[str, Any]:
    """A CSV export line as a Row; an empty cell is null, as in ODK-X CSV files."""
    body: dict[str, Any] = {"deleted": False}
    scope: dict[str, Any] = {}
    values: list[dict[str, Any]] = []
    for name, raw in record.items():
        value = raw if raw != "" else None
        if name in ROW_FIELDS:
            body[ROW_FIELDS[name]] = value
        elif name in SCOPE_FIELDS:
            scope[SCOPE_FIELDS[name]] = value
        else:
            assert not name.startswith("_"), f"unexpected metadata column {name}"
            values.append({"column": name, "value": value})
    body["filterScope"] = scope
    body["orderedColumns"] = sorted(values, key=lambda v: v["column"])
    return body


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a pull returns unchanged from what was pushed."""
    keys = ("id", "formId", "locale", "savepointType", "savepointTimestamp", "savepointCreator")
    return {
        **{key: body[key] for key in keys},
        "filterScope": body["filterScope"],
        "orderedColumns": body["orderedColumns"],
    }


async def _create(api: Api, sample: Path) -> Table:
    return await api.create_table(TABLE_ID, _columns(sample))


async def _load(api: Api, sample: Path) -> tuple[Table, list[dict[str, Any]], dict[str, Any]]:
    table = await _create(api, sample)
    rows = [_row(r) for r in _records(sample / "geotagger.updated.csv")]
    assert len(rows) == 13
    result = await api.push(table, rows, None)
    assert [o["outcome"] for o in result["rows"]] == ["SUCCESS"] * len(rows)
    return table, rows, result


async def test_sample_definition_round_trips(api: Api, sample: Path) -> None:
    """definition.csv creates the table; the definition comes back column for column."""
    table = await _create(api, sample)
    definition = await api.get_json(table.definition_uri)
    expected = sorted(_columns(sample), key=lambda c: c["elementKey"])
    assert definition["orderedColumns"] == expected
    again = await api.create_table(TABLE_ID, list(reversed(_columns(sample))))
    assert again.schema_etag == table.schema_etag


async def test_sample_rows_round_trip(api: Api, sample: Path) -> None:
    """The rows of geotagger.updated.csv read back byte-identical, on a pull and a diff."""
    table, rows, result = await _load(api, sample)
    expected = {r["id"]: _comparable(r) for r in rows}
    alice = api.as_user("alice")
    listing, _ = await pull_all(alice, table.data_uri, fetch_limit=5)
    assert {r["id"]: _comparable(r) for r in listing} == expected
    assert [r["id"] for r in listing] == [r["id"] for r in rows]
    history, _ = await pull_all(alice, table.diff_uri)
    assert {r["id"]: _comparable(r) for r in history} == expected
    for item in listing:
        retained = [c["column"] for c in item["orderedColumns"]]
        assert "Image" not in retained
        assert "Location" not in retained
        assert item["createUser"] == "admin"
        assert item["dataETagAtModification"] == result["dataETag"]


async def test_sample_edits_show_up_in_the_diff(api: Api, sample: Path) -> None:
    """geotagger.edited.csv: stale rowETags conflict; with the server's ones the diff has them."""
    table, _, loaded = await _load(api, sample)
    server_etags = {o["id"]: o["rowETag"] for o in loaded["rows"]}
    edits = [_row(r) for r in _records(sample / "geotagger.edited.csv")]
    assert len(edits) == 3
    assert all(e["rowETag"] for e in edits)

    stale = await api.push(table, edits, loaded["dataETag"])
    assert [o["outcome"] for o in stale["rows"]] == ["IN_CONFLICT"] * 3
    assert stale["dataETag"] == loaded["dataETag"]

    current = [{**e, "rowETag": server_etags[e["id"]]} for e in edits]
    edited = await api.push(table, current, loaded["dataETag"])
    assert [o["outcome"] for o in edited["rows"]] == ["SUCCESS"] * 3
    diff, _ = await pull_all(api, table.diff_uri, data_etag=loaded["dataETag"])
    assert {r["id"]: _comparable(r) for r in diff} == {e["id"]: _comparable(e) for e in edits}
    for item in diff:
        assert item["dataETagAtModification"] == edited["dataETag"]
        assert item["rowETag"] != server_etags[item["id"]]
    assert (await api.get_json(table.diff_uri, params={"data_etag": edited["dataETag"]}))[
        "rows"
    ] == []


async def test_sample_group_scopes_are_enforced(api: Api, sample: Path) -> None:
    """geotagger.groups.csv access columns: alice loses the HIDDEN row, cannot edit READ_ONLY."""
    table, _, loaded = await _load(api, sample)
    server_etags = {o["id"]: o["rowETag"] for o in loaded["rows"]}
    scoped = [_row(r) for r in _records(sample / "geotagger.groups.csv")]
    access = {r["id"]: r["filterScope"]["defaultAccess"] for r in scoped}
    assert sorted(access.values()) == ["HIDDEN", "MODIFY", "READ_ONLY"]
    changed = await api.push(
        table, [{**r, "rowETag": server_etags[r["id"]]} for r in scoped], loaded["dataETag"]
    )
    assert [o["outcome"] for o in changed["rows"]] == ["SUCCESS"] * 3
    assert [o["filterScope"] for o in changed["rows"]] == [r["filterScope"] for r in scoped]

    alice = api.as_user("alice")
    hidden = next(i for i, a in access.items() if a == "HIDDEN")
    listing, _ = await pull_all(alice, table.data_uri)
    assert hidden not in {r["id"] for r in listing}
    assert len(listing) == 12
    diff, _ = await pull_all(alice, table.diff_uri, data_etag=loaded["dataETag"])
    by_id = {r["id"]: r for r in diff}
    assert set(by_id) == set(access)
    revoked = by_id[hidden]
    assert revoked["deleted"] is True
    assert {c["value"] for c in revoked["orderedColumns"]} == {None}
    assert revoked["filterScope"] == {
        "defaultAccess": "HIDDEN",
        "rowOwner": None,
        "groupReadOnly": None,
        "groupModify": None,
        "groupPrivileged": None,
    }
    read_only = next(i for i, a in access.items() if a == "READ_ONLY")
    assert by_id[read_only]["filterScope"] == next(
        r["filterScope"] for r in scoped if r["id"] == read_only
    )

    attempt = {**next(r for r in scoped if r["id"] == read_only)}
    attempt["rowETag"] = by_id[read_only]["rowETag"]
    attempt["orderedColumns"] = [
        {**c, "value": "alice was here"} if c["column"] == "Description" else c
        for c in attempt["orderedColumns"]
    ]
    refused = await alice.push(table, [attempt], changed["dataETag"])
    assert refused["rows"][0]["outcome"] == "IN_CONFLICT"
    assert refused["dataETag"] == changed["dataETag"]
    everyone = {r["id"]: r for r in (await api.get_json(table.data_uri))["rows"]}
    assert len(everyone) == 13
