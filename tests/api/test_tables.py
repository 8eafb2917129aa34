"""Tables: list, create, definition, delete, paging, invalid definitions, status reports
(SYNC_PROTOCOL §3.5, §3.11–3.13, §3.16–3.17, §3.31, §5.1, §5.11–5.12; D4; §9 items 36–53,
128–129)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.api.support import (
    COLUMN_KEYS,
    TABLE_RESOURCE_KEYS,
    TABLE_RESOURCE_LIST_KEYS,
    assert_error,
    is_uuid_etag,
    pull_all,
)
from tests.helpers import CENSUS_COLUMNS, Api, column, new_id, row


def _definition(
    columns: list[dict[str, Any]] | None = None, table_id: str | None = None
) -> dict[str, Any]:
    return {
        "tableId": table_id,
        "schemaETag": None,
        "orderedColumns": CENSUS_COLUMNS if columns is None else columns,
    }


async def _put_table(api: Api, table_id: str, body: Any) -> Any:
    return await api.request("PUT", api.app_url(f"/tables/{table_id}"), json_body=body)


async def test_empty_server_lists_no_tables(api: Api) -> None:
    """An empty server answers an empty TableResourceList (item 37)."""
    listing = await api.get_json(api.app_url("/tables"))
    assert set(listing) == TABLE_RESOURCE_LIST_KEYS
    assert listing["tables"] == []
    assert listing["hasMoreResults"] is False
    assert listing["hasPriorResults"] is False
    assert isinstance(listing["appLevelManifestETag"], str)


async def test_create_table_returns_200_with_a_fresh_resource(api: Api) -> None:
    """PUT of a new definition: 200 (never 201), a `uuid:` schemaETag, dataETag null (item 38)."""
    response = await _put_table(api, "census", _definition(table_id="census"))
    assert response.status == 200
    resource = await response.json()
    assert set(resource) == TABLE_RESOURCE_KEYS
    assert resource["tableId"] == "census"
    assert is_uuid_etag(resource["schemaETag"])
    assert resource["dataETag"] is None
    # Item 53 (manifests are tested elsewhere): the table-level manifest ETag is present.
    assert isinstance(resource["tableLevelManifestETag"], str)
    assert resource["tableLevelManifestETag"]
    listing = await api.get_json(api.app_url("/tables"))
    assert listing["tables"] == [resource]
    assert await api.get_json(api.app_url("/tables/census")) == resource


async def test_body_table_id_and_schema_etag_are_ignored(api: Api) -> None:
    """The path's tableId wins and the server mints the schemaETag (item 39, D4)."""
    bogus = new_id()
    body = {"tableId": "other", "schemaETag": bogus, "orderedColumns": CENSUS_COLUMNS}
    response = await _put_table(api, "census", body)
    assert response.status == 200
    resource = await response.json()
    assert resource["tableId"] == "census"
    assert resource["schemaETag"] != bogus
    assert is_uuid_etag(resource["schemaETag"])
    await api.get_json(api.app_url("/tables/other"), status=404)


async def test_identical_definition_in_any_order_keeps_the_schema_etag(api: Api) -> None:
    """Re-creating with the same columns, in any order, is 200 with the same schemaETag (40)."""
    table = await api.create_table("census")
    await api.push(table, [row(name="kept")], None)
    shuffled = list(CENSUS_COLUMNS)
    random.Random(7).shuffle(shuffled)
    shuffled.reverse()
    for columns in (CENSUS_COLUMNS, shuffled):
        response = await _put_table(api, "census", _definition(columns))
        assert response.status == 200, await response.text()
        resource = await response.json()
        assert resource["schemaETag"] == table.schema_etag
        assert resource["dataETag"] is not None
    assert len((await api.get_json(table.data_uri))["rows"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        "extra column",
        "missing column",
        "other type",
        "other name",
        "children null",
        "children changed",
    ],
)
async def test_different_definition_is_409_table_exists(api: Api, change: str) -> None:
    """A different column set for an existing table is 409 TABLE_EXISTS (items 41, 42)."""
    table = await api.create_table("census")
    columns = [dict(c) for c in CENSUS_COLUMNS]
    if change == "extra column":
        columns.append(column("extra", "string"))
    elif change == "missing column":
        columns = [c for c in columns if c["elementKey"] != "name"]
    elif change == "other type":
        next(c for c in columns if c["elementKey"] == "age")["elementType"] = "number"
    elif change == "other name":
        next(c for c in columns if c["elementKey"] == "name")["elementName"] = "Name"
    elif change == "children null":
        next(c for c in columns if c["elementKey"] == "age")["listChildElementKeys"] = None
    else:
        location = next(c for c in columns if c["elementKey"] == "location")
        location["listChildElementKeys"] = json.dumps(
            ["location_latitude", "location_longitude", "location_altitude", "location_accuracy"]
        )
    response = await _put_table(api, "census", _definition(columns))
    await assert_error(response, 409, "TABLE_EXISTS")
    definition = await api.get_json(table.definition_uri)
    assert definition["schemaETag"] == table.schema_etag
    assert len(definition["orderedColumns"]) == len(CENSUS_COLUMNS)


async def test_null_children_is_a_schema_of_its_own(api: Api) -> None:
    """A table created with `listChildElementKeys: null` keeps it; `"[]"` then differs (42)."""
    columns = [{**column("name", "string"), "listChildElementKeys": None}]
    table = await api.create_table("nulls", columns)
    definition = await api.get_json(table.definition_uri)
    assert definition["orderedColumns"][0]["listChildElementKeys"] is None
    same = await _put_table(api, "nulls", _definition(columns))
    assert (await same.json())["schemaETag"] == table.schema_etag
    other = await _put_table(api, "nulls", _definition([column("name", "string")]))
    await assert_error(other, 409, "TABLE_EXISTS")


async def test_table_resource_urls_follow_the_templates(api: Api) -> None:
    """TableResource URLs follow §2.7 (item 43)."""
    table = await api.create_table("census")
    resource = table.resource
    root = resource["selfUri"]
    assert root.endswith("/odktables/default/tables/census")
    ref = f"{root}/ref/{table.schema_etag}"
    assert resource["definitionUri"] == ref
    assert resource["dataUri"] == ref + "/rows"
    assert resource["diffUri"] == ref + "/diff"
    assert resource["instanceFilesUri"] == ref + "/attachments"
    assert resource["aclUri"] == root + "/acl"


async def test_unknown_table_is_404(api: Api) -> None:
    """GET of an unknown table, or of anything below its ref, is 404 (item 44, §2.10)."""
    response = await api.request("GET", api.app_url("/tables/nothing"))
    error = await assert_error(response, 404, "TABLE_NOT_FOUND")
    assert "nothing" in error["message"]
    ref = api.app_url(f"/tables/nothing/ref/{new_id()}")
    for suffix in ("", "/rows", "/diff", "/diff/changeSets", f"/rows/{new_id()}"):
        response = await api.request("GET", ref + suffix)
        assert response.status == 404, suffix
        assert (await response.json())["type"] in ("TABLE_NOT_FOUND", "RESOURCE_NOT_FOUND")


async def test_definition_lists_every_column_sorted(api: Api) -> None:
    """The definition has all columns, retained or not, sorted by elementKey (item 45)."""
    table = await api.create_table("census", list(reversed(CENSUS_COLUMNS)))
    definition = await api.get_json(table.definition_uri)
    assert definition["tableId"] == "census"
    assert definition["schemaETag"] == table.schema_etag
    assert definition["selfUri"] == table.definition_uri
    assert definition["tableUri"] == table.resource["selfUri"]
    keys = [c["elementKey"] for c in definition["orderedColumns"]]
    assert keys == sorted(c["elementKey"] for c in CENSUS_COLUMNS)
    assert "location" in keys
    by_key = {c["elementKey"]: c for c in CENSUS_COLUMNS}
    for item in definition["orderedColumns"]:
        assert set(item) == COLUMN_KEYS
        assert item == by_key[item["elementKey"]]


async def test_wrong_schema_etag_is_412_with_the_live_one(api: Api) -> None:
    """A stale schemaETag is 412 SCHEMA_ETAG_MISMATCH naming the live schemaETag (item 46)."""
    table = await api.create_table("census")
    stale = table.definition_uri.replace(table.schema_etag, new_id())
    for suffix in ("", "/rows", "/diff", "/diff/changeSets"):
        response = await api.request("GET", stale + suffix)
        error = await assert_error(response, 412, "SCHEMA_ETAG_MISMATCH")
        assert error["message"] == f"SchemaETag differs\n{table.schema_etag}"


async def test_delete_table_removes_it(api: Api) -> None:
    """DELETE definitionUri: 200, gone from the list, 404 afterwards (item 47)."""
    table = await api.create_table("census")
    other = await api.create_table("other")
    await api.push(table, [row(name="x")], None)
    response = await api.request("DELETE", table.definition_uri)
    assert response.status == 200
    assert await response.read() == b""
    listing = await api.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in listing["tables"]] == ["other"]
    await api.get_json(api.app_url("/tables/census"), status=404)
    await api.get_json(table.definition_uri, status=404)
    await api.get_json(table.data_uri, status=404)
    assert (await api.get_json(other.definition_uri))["tableId"] == "other"


async def test_recreated_table_has_a_new_schema_etag_and_no_rows(api: Api) -> None:
    """Delete + identical re-create mints a new schemaETag and starts empty (item 49, §5.12)."""
    table = await api.create_table("census")
    pushed = await api.push(table, [row(name="old")], None)
    assert (await api.request("DELETE", table.definition_uri)).status == 200
    again = await api.create_table("census")
    assert again.schema_etag != table.schema_etag
    assert again.resource["dataETag"] is None
    assert (await api.get_json(again.data_uri))["rows"] == []
    assert (await api.get_json(again.diff_uri))["rows"] == []
    changes = await api.get_json(again.diff_uri + "/changeSets")
    assert changes["changeSets"] == []
    assert pushed["dataETag"] not in changes["changeSets"]
    await assert_error(await api.request("GET", table.data_uri), 412, "SCHEMA_ETAG_MISMATCH")


async def test_delete_with_wrong_schema_etag_deletes_nothing(api: Api) -> None:
    """DELETE with a stale schemaETag is 412 and leaves table and rows alone (item 50)."""
    table = await api.create_table("census")
    pushed = await api.push(table, [row(name="x")], None)
    stale = table.definition_uri.replace(table.schema_etag, new_id())
    response = await api.request("DELETE", stale)
    await assert_error(response, 412, "SCHEMA_ETAG_MISMATCH")
    resource = await api.get_json(api.app_url("/tables/census"))
    assert resource["schemaETag"] == table.schema_etag
    assert resource["dataETag"] == pushed["dataETag"]
    assert len((await api.get_json(table.data_uri))["rows"]) == 1


async def test_table_paging_visits_every_table_once(api: Api) -> None:
    """fetchLimit=1 with resume cursors visits every table exactly once (item 51)."""
    ids = [f"t{i}" for i in (3, 0, 4, 1, 2)]
    for table_id in ids:
        await api.create_table(table_id)
    seen: list[str] = []
    params: dict[str, str] = {"fetchLimit": "1"}
    pages = []
    while True:
        page = await api.get_json(api.app_url("/tables"), params=params)
        pages.append(page)
        assert len(page["tables"]) <= 1
        seen.extend(t["tableId"] for t in page["tables"])
        assert page["hasPriorResults"] is ("cursor" in params)
        if not page["hasMoreResults"]:
            break
        params["cursor"] = page["webSafeResumeCursor"]
        assert len(pages) <= len(ids) + 1
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    assert pages[-1]["hasMoreResults"] is False
    whole = await api.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in whole["tables"]] == sorted(ids)
    assert whole["hasMoreResults"] is False


async def test_table_ids_are_case_sensitive(api: Api) -> None:
    """`Census` and `census` are two tables (quirk 8.22)."""
    lower = await api.create_table("census")
    upper = await api.create_table("Census", [column("name", "string")])
    assert lower.schema_etag != upper.schema_etag
    await api.push(upper, [{**row(), "orderedColumns": [{"column": "name", "value": "U"}]}], None)
    assert (await api.get_json(lower.data_uri))["rows"] == []
    assert len((await api.get_json(upper.data_uri))["rows"]) == 1


def _invalid_definitions() -> list[Any]:
    name = column("name", "string")
    return [
        pytest.param(_definition([column("a", "integer:number")]), id="type-mismatch"),
        pytest.param(_definition([column("a", "custom:bogus")]), id="unknown-datatype"),
        pytest.param(_definition([column("a", "integer(")]), id="unparsable-type"),
        pytest.param(_definition([column("a", "object")]), id="object-without-children"),
        pytest.param(_definition([column("a", "array")]), id="array-without-children"),
        pytest.param(
            _definition([column("p", "geopoint", children='["p_lat"]')]), id="unknown-child"
        ),
        pytest.param(
            _definition([column("n", "number", children='["name"]'), name]),
            id="children-on-number",
        ),
        pytest.param(
            _definition([column("p", "geopoint", children="not json"), name]),
            id="children-not-json",
        ),
        pytest.param(_definition([name, column("name", "integer")]), id="duplicate-key"),
        pytest.param(_definition([column("1st", "string")]), id="key-starts-with-digit"),
        pytest.param(_definition([column("_id", "string")]), id="metadata-key"),
        pytest.param(_definition([column("a b", "string")]), id="key-with-space"),
        pytest.param({"tableId": "x", "schemaETag": None}, id="missing-orderedColumns"),
        pytest.param({**_definition(), "orderedColumns": None}, id="null-orderedColumns"),
        pytest.param({**_definition(), "orderedColumns": {"a": 1}}, id="orderedColumns-object"),
        pytest.param({**_definition(), "comment": "x"}, id="unknown-property"),
        pytest.param(
            _definition([{**name, "elementDataType": "string"}]), id="unknown-column-property"
        ),
        pytest.param(
            _definition([{k: v for k, v in name.items() if k != "elementType"}]),
            id="column-without-type",
        ),
        pytest.param(_definition([{**name, "elementType": 5}]), id="type-not-a-string"),
        pytest.param(["not", "an", "object"], id="array-body"),
    ]


@pytest.mark.parametrize("body", _invalid_definitions())
async def test_invalid_definition_is_400_and_creates_nothing(api: Api, body: Any) -> None:
    """An invalid definition is 400 and leaves no table behind (§5.10.1, quirk 8.16, D9)."""
    response = await _put_table(api, "broken", body)
    assert response.status == 400, await response.text()
    error = await assert_error(response, 400, (await response.json()).get("type", "?"))
    assert error["type"] in ("BAD_REQUEST", "BAD_COLUMN_NAME")
    await api.get_json(api.app_url("/tables/broken"), status=404)
    assert (await api.get_json(api.app_url("/tables")))["tables"] == []
    good = await _put_table(api, "broken", _definition())
    assert good.status == 200, await good.text()


@pytest.mark.parametrize("table_id", ["1census", "bad-id", "with space", "_census", "a" * 300])
async def test_invalid_table_id_is_400(api: Api, table_id: str) -> None:
    """A tableId that is not an ODK-X identifier (or far too long) is 400, nothing created."""
    response = await api.request("PUT", api.app_url(f"/tables/{table_id}"), json_body=_definition())
    await assert_error(response, 400, "BAD_REQUEST")
    assert (await api.get_json(api.app_url("/tables")))["tables"] == []


async def test_unicode_identifiers_are_accepted(api: Api) -> None:
    """ODK-X identifiers are letters, marks, digits and `_` in any script (§4.8)."""
    table = await api.create_table("cidade_ção", [column("nome_é", "string")])
    definition = await api.get_json(table.definition_uri)
    assert definition["tableId"] == "cidade_ção"
    assert definition["orderedColumns"][0]["elementKey"] == "nome_é"


async def test_installation_reports_are_accepted(api: Api) -> None:
    """installationInfo and installationStatus take any JSON and answer 200, no body (36, 128)."""
    table = await api.create_table("census")
    alice = api.as_user("alice")
    headers = {"X-OpenDataKit-Installation-Id": "b6a0f3c2-0d2e-4e5f-9a7b-1c2d3e4f5a6b"}
    info = await alice.request(
        "POST",
        api.app_url("/installationInfo"),
        json_body={"androidSdkInt": 33, "status": "SUCCESS", "uri:deviceid": "x"},
        headers=headers,
        gzip_body=True,
    )
    assert info.status == 200, await info.text()
    assert await info.read() == b""
    status_url = table.definition_uri + "/installationStatus"
    for body in ({"tableId": "census", "syncOutcome": "SUCCESS"}, [1, 2], "text"):
        status = await alice.request(
            "POST", status_url, json_body=body, headers=headers, gzip_body=True
        )
        assert status.status == 200, await status.text()
        assert await status.read() == b""
    no_installation = await alice.request("POST", status_url, json_body={"a": 1})
    assert no_installation.status == 200


async def test_installation_status_with_wrong_schema_etag_is_412(api: Api) -> None:
    """installationStatus under a stale schemaETag is 412 (item 129)."""
    table = await api.create_table("census")
    url = table.definition_uri.replace(table.schema_etag, new_id()) + "/installationStatus"
    response = await api.as_user("alice").request("POST", url, json_body={"a": 1})
    await assert_error(response, 412, "SCHEMA_ETAG_MISMATCH")


async def test_definition_retention_of_array_and_mime_columns(api: Api) -> None:
    """An array column is retained (its items are not); a mimeUri parent is not (§5.10.2)."""
    columns = [
        column("tags", "array", children='["tags_items"]'),
        column("tags_items", "string", "items"),
        column("photo", "mimeUri", children='["photo_uriFragment","photo_contentType"]'),
        column("photo_uriFragment", "rowpath", "uriFragment"),
        column("photo_contentType", "string", "contentType"),
    ]
    table = await api.create_table("media", columns)
    pushed = await api.push(
        table,
        [
            {
                **row(),
                "orderedColumns": [
                    {"column": "photo_contentType", "value": "image/jpeg"},
                    {"column": "photo_uriFragment", "value": "a.jpg"},
                    {"column": "tags", "value": '["a","b"]'},
                ],
            }
        ],
        None,
    )
    assert pushed["rows"][0]["outcome"] == "SUCCESS"
    stored = (await api.get_json(table.data_uri))["rows"][0]
    assert stored["orderedColumns"] == [
        {"column": "photo_contentType", "value": "image/jpeg"},
        {"column": "photo_uriFragment", "value": "a.jpg"},
        {"column": "tags", "value": '["a","b"]'},
    ]
    rows, _ = await pull_all(api, table.diff_uri)
    assert len(rows) == 1
