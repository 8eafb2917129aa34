"""A catalogue of bad requests: each is answered with the documented 4xx `Error` entity and
writes nothing (SYNC_PROTOCOL §2.8, §5.5, §6; DECISIONS D8, D9, D10; §9 items 67–69, 76,
134–136)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.support import assert_error, gzip_stream, snapshot
from tests.helpers import ODK, Api, Table, new_id, row

SMALL_LIMIT = 64 * 1024


@dataclass
class Seeded:
    """A table holding one row, so a bad push has something it must not touch."""

    table: Table
    data_etag: str
    existing: dict[str, Any]


@pytest.fixture
async def seeded(api: Api) -> Seeded:
    existing = row(name="existing", age="40")
    table = await api.create_table()
    result = await api.push(table, [existing], None)
    existing["rowETag"] = result["rows"][0]["rowETag"]
    return Seeded(table, result["dataETag"], existing)


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _push_with(bad_row: Callable[[Seeded], dict[str, Any]]) -> Callable[[Seeded], bytes]:
    """A push of one valid new row, one valid update, then the bad row (atomicity, item 76)."""

    def build(seed: Seeded) -> bytes:
        update = row(seed.existing["id"], seed.existing["rowETag"], name="changed", age="41")
        return _json(
            {"rows": [row(name="valid"), update, bad_row(seed)], "dataETag": seed.data_etag}
        )

    return build


def _with(**changes: Any) -> Callable[[Seeded], dict[str, Any]]:
    return lambda seed: {**row(name="bad"), **changes}


def _with_value(column: str, value: Any) -> Callable[[Seeded], dict[str, Any]]:
    def build(seed: Seeded) -> dict[str, Any]:
        body = row(name="bad")
        others = [c for c in body["orderedColumns"] if c["column"] != column]
        body["orderedColumns"] = sorted(
            [*others, {"column": column, "value": value}], key=lambda c: str(c["column"])
        )
        return body

    return build


def _extra_value_item(seed: Seeded) -> dict[str, Any]:
    body = row(name="bad")
    body["orderedColumns"][0] = {**body["orderedColumns"][0], "type": "integer"}
    return body


def _duplicate_column(seed: Seeded) -> dict[str, Any]:
    body = row(name="bad")
    body["orderedColumns"].append({"column": "name", "value": "again"})
    return body


def _without_column_name(seed: Seeded) -> dict[str, Any]:
    body = row(name="bad")
    body["orderedColumns"][0] = {"value": "1"}
    return body


BODIES: list[Any] = [
    # JSON syntax and encoding (D9: 400, never 500)
    pytest.param(lambda s: b'{"rows": [', "BAD_REQUEST", id="truncated-json"),
    pytest.param(lambda s: b"", "BAD_REQUEST", id="empty-body"),
    pytest.param(lambda s: b'{"rows": []} trailing', "BAD_REQUEST", id="trailing-garbage"),
    pytest.param(lambda s: b"{'rows': []}", "BAD_REQUEST", id="single-quotes"),
    pytest.param(
        lambda s: b'{"rows":[],"dataETag":"' + "ção".encode("latin-1") + b'"}',
        "BAD_REQUEST",
        id="non-utf8",
    ),
    pytest.param(lambda s: b'{"rows":[],"dataETag":NaN}', "BAD_REQUEST", id="nan-constant"),
    pytest.param(lambda s: b"[]", "BAD_REQUEST", id="array-instead-of-object"),
    pytest.param(lambda s: b"null", "BAD_REQUEST", id="null-body"),
    # unknown properties (D9)
    pytest.param(
        lambda s: _json({"rows": [], "dataETag": s.data_etag, "tableId": "x"}),
        "BAD_REQUEST",
        id="unknown-top-level-field",
    ),
    pytest.param(_push_with(_with(values=[])), "BAD_REQUEST", id="unknown-row-field"),
    pytest.param(
        _push_with(_with(filterScope={"type": "Default", "value": None})),
        "BAD_REQUEST",
        id="unknown-scope-field",
    ),
    pytest.param(_push_with(_extra_value_item), "BAD_REQUEST", id="unknown-value-field"),
    # wrong JSON types
    pytest.param(
        lambda s: _json({"rows": {"a": 1}, "dataETag": s.data_etag}),
        "BAD_REQUEST",
        id="rows-not-a-list",
    ),
    pytest.param(
        lambda s: _json({"rows": ["row"], "dataETag": s.data_etag}),
        "BAD_REQUEST",
        id="row-not-an-object",
    ),
    pytest.param(lambda s: _json({"rows": [], "dataETag": 5}), "BAD_REQUEST", id="dataETag-number"),
    pytest.param(_push_with(_with(deleted="true")), "BAD_REQUEST", id="deleted-as-string"),
    pytest.param(_push_with(_with(deleted=1)), "BAD_REQUEST", id="deleted-as-number"),
    pytest.param(
        _push_with(_with(orderedColumns={"name": "x"})), "BAD_REQUEST", id="orderedColumns-object"
    ),
    pytest.param(
        _push_with(_with(orderedColumns="name=x")), "BAD_REQUEST", id="orderedColumns-string"
    ),
    pytest.param(_push_with(_with_value("age", 34)), "BAD_REQUEST", id="value-as-number"),
    pytest.param(_push_with(_with_value("name", True)), "BAD_REQUEST", id="value-as-boolean"),
    pytest.param(_push_with(_without_column_name), "BAD_REQUEST", id="value-without-column"),
    pytest.param(_push_with(_with(id=5)), "BAD_REQUEST", id="id-as-number"),
    pytest.param(_push_with(_with(rowETag=["x"])), "BAD_REQUEST", id="rowETag-as-list"),
    pytest.param(
        _push_with(_with(savepointTimestamp=1714641327)), "BAD_REQUEST", id="timestamp-number"
    ),
    pytest.param(_push_with(_with(filterScope="FULL")), "BAD_REQUEST", id="scope-as-string"),
    # identifiers
    pytest.param(_push_with(_with(id="x" * 300)), "BAD_REQUEST", id="id-300-chars"),
    pytest.param(_push_with(_with(id="")), "BAD_REQUEST", id="empty-id"),
    # NUL can live in values (stored as JSON text), never in ids or metadata (PostgreSQL text)
    pytest.param(_push_with(_with(id="a\u0000b")), "BAD_REQUEST", id="nul-in-id"),
    pytest.param(_push_with(_with(formId="census\u0000")), "BAD_REQUEST", id="nul-in-formId"),
    pytest.param(
        _push_with(_with(filterScope={"defaultAccess": "FULL", "rowOwner": "\u0000"})),
        "BAD_REQUEST",
        id="nul-in-rowOwner",
    ),
    # enums are case-sensitive names
    pytest.param(
        _push_with(_with(filterScope={"defaultAccess": "EVERYONE"})),
        "BAD_REQUEST",
        id="bad-defaultAccess",
    ),
    pytest.param(
        _push_with(_with(filterScope={"defaultAccess": "full"})),
        "BAD_REQUEST",
        id="lower-case-defaultAccess",
    ),
    # values (§5.10.3)
    pytest.param(_push_with(_with_value("age", "abc")), "BAD_REQUEST", id="integer-abc"),
    pytest.param(_push_with(_with_value("age", "5.0")), "BAD_REQUEST", id="integer-5.0"),
    pytest.param(_push_with(_with_value("age", "1e3")), "BAD_REQUEST", id="integer-exponent"),
    pytest.param(
        _push_with(_with_value("location_latitude", "abc")), "BAD_REQUEST", id="number-abc"
    ),
    pytest.param(
        _push_with(_with_value("location_latitude", "1,5")), "BAD_REQUEST", id="number-comma"
    ),
    pytest.param(_push_with(_duplicate_column), "BAD_REQUEST", id="column-twice"),
    # column names (§5.5, §5.9)
    pytest.param(
        _push_with(_with_value("_savepoint_type", "COMPLETE")),
        "BAD_COLUMN_NAME",
        id="column-_savepoint_type",
    ),
    pytest.param(_push_with(_with_value("_id", "x")), "BAD_COLUMN_NAME", id="column-_id"),
    pytest.param(
        _push_with(_with_value("_row_etag", "x")), "BAD_COLUMN_NAME", id="column-_row_etag"
    ),
    pytest.param(
        _push_with(_with_value("_sync_state", "x")), "BAD_COLUMN_NAME", id="column-_sync_state"
    ),
    pytest.param(
        _push_with(_with_value("_default_access", "FULL")),
        "BAD_COLUMN_NAME",
        id="column-_default_access",
    ),
    pytest.param(_push_with(_with_value("_form_id", "x")), "BAD_COLUMN_NAME", id="column-_form_id"),
    pytest.param(_push_with(_with_value("nope", "x")), "BAD_COLUMN_NAME", id="unknown-column"),
    pytest.param(_push_with(_with_value("NAME", "x")), "BAD_COLUMN_NAME", id="column-case"),
]


@pytest.mark.parametrize(("body", "error_type"), BODIES)
async def test_bad_row_push_is_refused_whole(
    api: Api, seeded: Seeded, body: Callable[[Seeded], bytes], error_type: str
) -> None:
    """A bad RowList is 400 with the documented type and changes nothing (items 67–69, 76)."""
    before = await snapshot(api, seeded.table)
    for gzip_body in (False, True):
        response = await api.request(
            "PUT",
            seeded.table.data_uri,
            data=body(seeded),
            headers={"Content-Type": "application/json"},
            gzip_body=gzip_body,
        )
        await assert_error(response, 400, error_type)
    assert await snapshot(api, seeded.table) == before


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=ISO-8859-1", 400),
        ("application/json; charset=utf-16", 400),
        ("text/xml", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
async def test_wrong_media_type_or_charset(
    api: Api, seeded: Seeded, content_type: str, status: int
) -> None:
    """A body that is not UTF-8 JSON by its Content-Type is refused, nothing written (§2.3)."""
    before = await snapshot(api, seeded.table)
    response = await api.request(
        "PUT",
        seeded.table.data_uri,
        data=_json({"rows": [row()], "dataETag": seeded.data_etag}),
        headers={"Content-Type": content_type},
    )
    await assert_error(response, status, "BAD_REQUEST")
    assert await snapshot(api, seeded.table) == before


async def test_push_to_an_unknown_table_is_404(api: Api, seeded: Seeded) -> None:
    """Rows pushed to a table that does not exist: 404 TABLE_NOT_FOUND, nothing created."""
    url = api.app_url(f"/tables/nothing/ref/{seeded.table.schema_etag}/rows")
    response = await api.request("PUT", url, json_body={"rows": [row()], "dataETag": None})
    await assert_error(response, 404, "TABLE_NOT_FOUND")
    await api.get_json(api.app_url("/tables/nothing"), status=404)
    listing = await api.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in listing["tables"]] == [seeded.table.table_id]


async def test_push_under_a_wrong_schema_etag_is_412(api: Api, seeded: Seeded) -> None:
    """Rows pushed under a stale schemaETag: 412 SCHEMA_ETAG_MISMATCH, nothing written."""
    before = await snapshot(api, seeded.table)
    url = seeded.table.data_uri.replace(seeded.table.schema_etag, new_id())
    body = {"rows": [row()], "dataETag": seeded.data_etag}
    response = await api.request("PUT", url, json_body=body)
    error = await assert_error(response, 412, "SCHEMA_ETAG_MISMATCH")
    assert error["message"].endswith(seeded.table.schema_etag)
    assert await snapshot(api, seeded.table) == before


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "1e3", " ", "99999999999999999999x"])
async def test_bad_fetch_limit_is_400(api: Api, seeded: Seeded, limit: str) -> None:
    """fetchLimit ≤ 0 or non-numeric is 400 BAD_REQUEST on every paged listing (D8, item 135)."""
    urls = [
        api.app_url("/tables"),
        seeded.table.data_uri,
        seeded.table.diff_uri,
        f"{seeded.table.diff_uri}/changeSets/{seeded.data_etag}",
        api.app_url(f"/tables/{seeded.table.table_id}/acl"),
    ]
    for url in urls:
        response = await api.request("GET", url, params={"fetchLimit": limit})
        if limit == " ":  # blank means absent: the default page size
            assert response.status == 200, url
            continue
        await assert_error(response, 400, "BAD_REQUEST")


async def test_huge_fetch_limit_is_capped_not_refused(api: Api, seeded: Seeded) -> None:
    """A fetchLimit above the maximum is served (clamped), not refused (D8, quirk 8.19)."""
    listing = await api.get_json(seeded.table.data_uri, params={"fetchLimit": "1000000"})
    assert len(listing["rows"]) == 1


async def test_bad_cursors_are_400(api: Api, seeded: Seeded) -> None:
    """Malformed, tampered and foreign cursors are 400, never 500 (D8, items 136, quirk 8.14)."""
    table = seeded.table
    other = await api.create_table()
    await api.push(other, [row(), row()], None)
    await api.push(table, [row()], seeded.data_etag)
    tables_cursor = (await api.get_json(api.app_url("/tables"), params={"fetchLimit": "1"}))[
        "webSafeResumeCursor"
    ]
    rows_cursor = (await api.get_json(table.data_uri, params={"fetchLimit": "1"}))[
        "webSafeResumeCursor"
    ]
    other_rows_cursor = (await api.get_json(other.data_uri, params={"fetchLimit": "1"}))[
        "webSafeResumeCursor"
    ]
    diff_cursor = (
        await api.get_json(
            table.diff_uri, params={"fetchLimit": "1", "data_etag": seeded.data_etag}
        )
    )["webSafeResumeCursor"]
    assert all((tables_cursor, rows_cursor, other_rows_cursor, diff_cursor))
    flipped = rows_cursor[:-3] + ("A" if rows_cursor[-3] != "A" else "B") + rows_cursor[-2:]
    cases = [
        (table.data_uri, "garbage"),
        (table.data_uri, "!!!"),
        (table.data_uri, "H4sIAAAAAAAAAE2PwQqCQBCGXyW6t6MLYsFi"),
        (table.data_uri, flipped),
        (table.data_uri, tables_cursor),
        (table.data_uri, other_rows_cursor),
        (table.data_uri, diff_cursor),
        (table.diff_uri, rows_cursor),
        (api.app_url("/tables"), rows_cursor),
    ]
    for url, cursor in cases:
        response = await api.request("GET", url, params={"cursor": cursor})
        await assert_error(response, 400, "BAD_REQUEST")
    # the diff cursor is bound to its data_etag as well
    response = await api.request(
        "GET", table.diff_uri, params={"cursor": diff_cursor, "data_etag": new_id()}
    )
    await assert_error(response, 400, "BAD_REQUEST")
    ok = await api.request("GET", table.data_uri, params={"cursor": rows_cursor})
    assert ok.status == 200


async def test_bad_sequence_value_is_400(api: Api, seeded: Seeded) -> None:
    """A sequence_value the server never issued in that form is 400, not 500."""
    url = seeded.table.diff_uri + "/changeSets"
    for value in (
        "abc",
        "-1",
        "2024-05-02T09:20:01.517+0000.0000000001x",
        "99999999999999999999999",
        "9223372036854775808",
        "²",
        "١٢",
    ):
        response = await api.request("GET", url, params={"sequence_value": value})
        await assert_error(response, 400, "BAD_REQUEST")


async def test_nul_in_the_url_is_400(api: Api, seeded: Seeded) -> None:
    """A NUL character in a path segment or query value is 400, never 500 (D9)."""
    table = seeded.table
    urls = [
        (api.app_url("/tables/a%00b"), {}),
        (f"{table.data_uri}/a%00b", {}),
        (table.diff_uri, {"data_etag": "a\u0000b"}),
        (table.diff_uri + "/changeSets", {"data_etag": "a\u0000b"}),
        (f"{table.diff_uri}/changeSets/a%00b", {}),
        (table.resource["aclUri"] + "/user/a%00b", {}),
        (table.data_uri, {"cursor": "\u0000"}),
    ]
    for url, params in urls:
        response = await api.request("GET", url, params=params)
        await assert_error(response, 400, "BAD_REQUEST")


# -- size limits (D10) ----------------------------------------------------------------------


def _big_push(seed: Seeded, size: int) -> bytes:
    return _json({"rows": [row(name="x" * size)], "dataETag": seed.data_etag})


@pytest.mark.parametrize("settings_overrides", [{"max_json_bytes": SMALL_LIMIT}])
async def test_body_over_the_json_limit_is_413(api: Api, seeded: Seeded) -> None:
    """A JSON body above the configured limit is 413, and nothing is written (D10)."""
    before = await snapshot(api, seeded.table)
    body = _big_push(seeded, SMALL_LIMIT + 10)
    response = await api.request(
        "PUT", seeded.table.data_uri, data=body, headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 413, "BAD_REQUEST")
    definition: dict[str, Any] = {"tableId": "big", "schemaETag": None, "orderedColumns": []}
    definition["orderedColumns"] = [
        {
            "elementKey": f"c{i}",
            "elementName": f"c{i}",
            "elementType": "string",
            "listChildElementKeys": "[]",
        }
        for i in range(SMALL_LIMIT // 50)
    ]
    response = await api.request("PUT", api.app_url("/tables/big"), json_body=definition)
    await assert_error(response, 413, "BAD_REQUEST")
    await api.get_json(api.app_url("/tables/big"), status=404)
    assert await snapshot(api, seeded.table) == before

    fits = _big_push(seeded, SMALL_LIMIT // 2)
    ok = await api.request(
        "PUT",
        seeded.table.data_uri,
        data=fits,
        headers={"Content-Type": "application/json"},
        gzip_body=True,
    )
    assert ok.status == 200, await ok.text()


@pytest.mark.parametrize("settings_overrides", [{"max_json_bytes": SMALL_LIMIT}])
async def test_gzip_bomb_is_413(api: Api, seeded: Seeded) -> None:
    """A small gzip body that inflates far beyond the limit is 413, not inflated whole (D10)."""
    before = await snapshot(api, seeded.table)
    inflated = b'{"rows":[],"dataETag":"' + b"0" * (50 * 1024 * 1024) + b'"}'
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 100 * 1024
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await api.request("PUT", seeded.table.data_uri, data=bomb, headers=headers)
    await assert_error(response, 413, "BAD_REQUEST")

    streamed = await api.client.put(
        api.path(seeded.table.data_uri),
        data=gzip_stream(inflated, chunk=16 * 1024),
        headers={**ODK, **api.auth_headers(), **headers},
    )
    await assert_error(streamed, 413, "BAD_REQUEST")
    assert await snapshot(api, seeded.table) == before


async def test_corrupt_gzip_body_is_400(api: Api, seeded: Seeded) -> None:
    """A body that claims gzip but is not gzip is 400, nothing written."""
    before = await snapshot(api, seeded.table)
    body = _json({"rows": [row()], "dataETag": seeded.data_etag})
    broken = gzip.compress(body)[:-12] + b"\x00" * 12
    for data in (body, broken):
        response = await api.request(
            "PUT",
            seeded.table.data_uri,
            data=data,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert 400 <= response.status < 500, await response.text()
        await assert_error(response, response.status, "BAD_REQUEST")
    assert await snapshot(api, seeded.table) == before
