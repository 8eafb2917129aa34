"""The properties endpoints: properties.csv as JSON (SYNC_PROTOCOL §3.14, §3.15, §4.23, §5.15;
quirk 8.12 with its recommendations; §9 items 19, 111, 112)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.files.support import download, file_url, get_manifest, md5_of, upload_ok
from tests.helpers import Api

HEADER = b"_partition,_aspect,_key,_type,_value\r\n"


def _entry(partition: str, aspect: str, key: str, kind: str, value: Any) -> dict[str, Any]:
    return {"partition": partition, "aspect": aspect, "key": key, "type": kind, "value": value}


PROPERTIES = [
    _entry("Table", "default", "displayName", "string", "Census, 2024"),
    _entry("Column", "name", "displayName", "string", 'The "name"'),
    _entry("Table", "default", "colOrder", "array", ["name", "age"]),
    _entry("Table", "default", "defaultViewType", "string", "SPREADSHEET"),
    _entry("Column", "age", "displayVisible", "boolean", True),
    _entry("Table", "default", "sortOrder", "integer", 42),
    _entry("Table", "default", "weight", "number", 3.5),
    _entry("Table", "security", "locked", "boolean", False),
    _entry("Table", "default", "joins", "object", {"a": [1, 2], "b": None}),
    _entry("Table", "default", "note", "string", "line one\nline two"),
    _entry("Table", "default", "nothing", "string", None),
]


def _url(api: Api, table_id: str, version: str = "2") -> str:
    return api.app_url(f"/tables/{table_id}/properties/{version}")


def _key(entry: dict[str, Any]) -> tuple[str, ...]:
    return (entry["partition"], entry["aspect"], entry["key"], entry["type"])


async def _put(api: Api, table_id: str, body: Any) -> int:
    response = await api.request("PUT", _url(api, table_id), json_body=body, gzip_body=True)
    return response.status


async def test_put_stores_sorted_rfc4180_csv(api: Api) -> None:
    """PUT answers 202 and stores tables/T/properties.csv: the fixed header, entries sorted,
    RFC 4180 quoting with CRLF, JSON strings verbatim, null as an empty field (items 111)."""
    await api.create_table("census")
    assert await _put(api, "census", PROPERTIES) == 202
    response, content = await download(api, file_url(api, "tables/census/properties.csv"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert content == HEADER + (
        b"Column,age,displayVisible,boolean,true\r\n"
        b'Column,name,displayName,string,"The ""name"""\r\n'
        b'Table,default,colOrder,array,"[""name"",""age""]"\r\n'
        b"Table,default,defaultViewType,string,SPREADSHEET\r\n"
        b'Table,default,displayName,string,"Census, 2024"\r\n'
        b'Table,default,joins,object,"{""a"":[1,2],""b"":null}"\r\n'
        b'Table,default,note,string,"line one\nline two"\r\n'
        b"Table,default,nothing,string,\r\n"
        b"Table,default,sortOrder,integer,42\r\n"
        b"Table,default,weight,number,3.5\r\n"
        b"Table,security,locked,boolean,false\r\n"
    )
    body, _ = await get_manifest(api, "census")
    (entry,) = body["files"]
    assert entry["filename"] == "tables/census/properties.csv"
    assert entry["md5hash"] == md5_of(content)


async def test_get_returns_typed_values(api: Api) -> None:
    """GET returns a JSON array typed by `type`: numbers, integers, booleans, JSON arrays and
    objects parsed, strings verbatim, null values included (item 112, quirk 8.12 fixed)."""
    await api.create_table("census")
    assert await _put(api, "census", PROPERTIES) == 202
    got = await api.get_json(_url(api, "census"))
    assert isinstance(got, list)
    assert sorted(got, key=_key) == sorted(PROPERTIES, key=_key)
    by_key = {e["key"]: e["value"] for e in got}
    assert isinstance(by_key["sortOrder"], int)
    assert not isinstance(by_key["sortOrder"], bool)
    assert by_key["displayVisible"] is True
    assert by_key["locked"] is False
    assert by_key["nothing"] is None
    for entry in got:
        assert set(entry) == {"partition", "aspect", "key", "type", "value"}


async def test_get_types_values_of_an_uploaded_file(api: Api) -> None:
    """A properties.csv uploaded as a file is parsed: boolean case-insensitive, unparsable numbers
    null, unknown types parsed as JSON, empty values null (§3.14)."""
    await api.create_table("census")
    csv = HEADER + (
        b"Column,a,displayVisible,boolean,TRUE\n"
        b"Column,a,other,boolean,yes\n"
        b"Column,a,n,number,abc\n"
        b"Column,a,i,integer,7\n"
        b'Column,a,displayName,OBJECT,"""Date and Time"""\r\n'
        b"Column,a,empty,string,\r\n"
    )
    await upload_ok(api, "tables/census/properties.csv", csv, content_type="text/csv")
    got = await api.get_json(_url(api, "census"))
    assert {e["key"]: e["value"] for e in got} == {
        "displayVisible": True,
        "other": False,
        "n": None,
        "i": 7,
        "displayName": "Date and Time",
        "empty": None,
    }


async def test_non_finite_numbers_become_null(api: Api) -> None:
    """NaN and infinities are not JSON numbers: GET answers valid JSON with null for them, whatever
    the declared type (§3.14: unparsable → null; §2.4)."""
    await api.create_table("census")
    csv = HEADER + (
        b"Table,default,a,number,NaN\r\n"
        b"Table,default,b,number,inf\r\n"
        b"Table,default,c,number,1e999\r\n"
        b"Table,default,d,object,NaN\r\n"
        b"Table,default,e,array,[Infinity]\r\n"
        b"Table,default,f,number,-2.5e3\r\n"
    )
    await upload_ok(api, "tables/census/properties.csv", csv, content_type="text/csv")
    response = await api.request("GET", _url(api, "census"))
    assert response.status == 200
    text = await response.text()
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text}"))
    assert {e["key"]: e["value"] for e in strict} == {
        "a": None,
        "b": None,
        "c": None,
        "d": None,
        "e": None,
        "f": -2500.0,
    }


async def test_empty_stored_file_gives_empty_array(api: Api) -> None:
    """An existing but empty properties.csv answers 200 `[]`, not an object (quirk 8.12)."""
    await api.create_table("census")
    await upload_ok(api, "tables/census/properties.csv", b"", content_type="text/csv")
    assert await api.get_json(_url(api, "census")) == []


async def test_put_empty_list_round_trips(api: Api) -> None:
    """PUT of `[]` stores only the header; GET then answers `[]`."""
    await api.create_table("census")
    assert await _put(api, "census", []) == 202
    _, content = await download(api, file_url(api, "tables/census/properties.csv"))
    assert content == HEADER
    assert await api.get_json(_url(api, "census")) == []


async def test_put_replaces_the_whole_file(api: Api) -> None:
    """A second PUT replaces every entry of the first (§3.15)."""
    await api.create_table("census")
    assert await _put(api, "census", PROPERTIES) == 202
    replacement = [_entry("Table", "default", "displayName", "string", "New")]
    assert await _put(api, "census", replacement) == 202
    assert await api.get_json(_url(api, "census")) == replacement


async def test_unknown_table_is_404(api: Api) -> None:
    """GET and PUT for a table that does not exist answer 404."""
    assert (await api.request("GET", _url(api, "nope"))).status == 404
    assert await _put(api, "nope", PROPERTIES) == 404


async def test_missing_file_is_404(api: Api) -> None:
    """GET for an existing table without properties.csv answers 404 RESOURCE_NOT_FOUND."""
    await api.create_table("census")
    response = await api.request("GET", _url(api, "census"))
    assert response.status == 404
    assert (await response.json())["type"] == "RESOURCE_NOT_FOUND"


async def test_versions_are_separate(api: Api) -> None:
    """Properties are stored per client version: a version-3 PUT leaves version 2 absent."""
    await api.create_table("census")
    response = await api.request("PUT", _url(api, "census", "3"), json_body=PROPERTIES[:1])
    assert response.status == 202
    assert (await api.request("GET", _url(api, "census"))).status == 404
    assert await api.get_json(_url(api, "census", "3")) == PROPERTIES[:1]


async def test_sync_user_may_read_but_not_write(api: Api) -> None:
    """A synchronizing user gets 403 on PUT, the stored file is unchanged, GET works (item 19)."""
    await api.create_table("census")
    assert await _put(api, "census", PROPERTIES) == 202
    alice = api.as_user("alice")
    assert await _put(alice, "census", PROPERTIES[:1]) == 403
    assert sorted(await alice.get_json(_url(api, "census")), key=_key) == sorted(
        PROPERTIES, key=_key
    )


async def test_malformed_bodies_are_400(api: Api) -> None:
    """A body that is not an array of property objects, or has unknown keys, is 400 (D9)."""
    await api.create_table("census")
    bodies: list[Any] = [
        {"properties": []},
        [
            {
                "partition": "Table",
                "aspect": "default",
                "key": "k",
                "type": "string",
                "value": 1,
                "extra": 1,
            }
        ],
        [{"partition": 1, "aspect": "default", "key": "k", "type": "string", "value": "v"}],
        ["not an object"],
    ]
    for body in bodies:
        assert await _put(api, "census", body) == 400, body
    assert (await api.request("GET", _url(api, "census"))).status == 404
