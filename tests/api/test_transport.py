"""Transport conventions (SYNC_PROTOCOL §2, §9 items 1–12): headers, compression, media types,
exact entity shapes, absolute URLs, forwarded headers, automatic ETags."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from typing import Any

import aiohttp
import pytest

from tests.api.support import (
    CHANGE_SET_LIST_KEYS,
    COLUMN_KEYS,
    DEFINITION_RESOURCE_KEYS,
    PRIVILEGES_KEYS,
    ROW_OUTCOME_KEYS,
    TABLE_RESOURCE_KEYS,
    TABLE_RESOURCE_LIST_KEYS,
    USER_INFO_KEYS,
    assert_odk_headers,
    assert_outcome_list_shape,
    assert_row_list_shape,
    assert_row_resource_shape,
    gzip_stream,
    values_of,
)
from tests.helpers import CENSUS_COLUMNS, ODK, Api, Table, new_id, row

URL_FIELDS = (
    "selfUri",
    "definitionUri",
    "dataUri",
    "instanceFilesUri",
    "diffUri",
    "aclUri",
    "tableUri",
)


async def _table_with_rows(api: Api, count: int = 3) -> tuple[Table, dict[str, Any]]:
    table = await api.create_table()
    rows = [row(name=f"person {i}", age=str(20 + i)) for i in range(count)]
    result = await api.push(table, rows, None)
    return table, result


def _urls(entity: Any) -> list[str]:
    """Every URL-valued property anywhere in a JSON entity."""
    found: list[str] = []
    if isinstance(entity, dict):
        for key, value in entity.items():
            if key in URL_FIELDS and value is not None:
                found.append(value)
            else:
                found.extend(_urls(value))
    elif isinstance(entity, list):
        for item in entity:
            found.extend(_urls(item))
    return found


async def test_odk_and_cors_headers_on_every_kind_of_response(api: Api) -> None:
    """200, 304, 400, 401, 403, 404, 405, 409 and 412 all carry the ODK and CORS headers."""
    table, pushed = await _table_with_rows(api, 1)
    tables_url = api.app_url("/tables")
    responses: dict[int, aiohttp.ClientResponse] = {}

    responses[200] = await api.request("GET", tables_url)
    etag = responses[200].headers["ETag"]
    responses[304] = await api.request("GET", tables_url, headers={"If-None-Match": etag})
    responses[400] = await api.request("GET", tables_url, params={"fetchLimit": "abc"})
    responses[401] = await api.as_user(None).request("GET", tables_url)
    responses[403] = await api.as_user("alice").request(
        "PUT",
        api.app_url("/tables/forbidden"),
        json_body={"tableId": "forbidden", "schemaETag": None, "orderedColumns": CENSUS_COLUMNS},
    )
    responses[404] = await api.request("GET", api.app_url("/tables/no_such_table"))
    responses[409] = await api.request(
        "PUT", table.data_uri, json_body={"rows": [row()], "dataETag": new_id()}
    )
    wrong_ref = table.data_uri.replace(table.schema_etag, new_id())
    responses[412] = await api.request("GET", wrong_ref)
    responses[405] = await api.request("POST", tables_url)

    for status, response in responses.items():
        assert response.status == status, (status, await response.text())
        assert_odk_headers(response)
    assert pushed["rows"][0]["outcome"] == "SUCCESS"


async def test_request_without_odk_version_header_is_served(api: Api) -> None:
    """A request lacking X-OpenDataKit-Version is answered normally (§2.1, item 3)."""
    table, _ = await _table_with_rows(api, 2)
    response = await api.client.get(api.path(table.data_uri), headers=api.auth_headers())
    assert response.status == 200, await response.text()
    assert "X-OpenDataKit-Version" not in response.request_info.headers
    assert len((await response.json())["rows"]) == 2
    assert_odk_headers(response)


async def test_gzip_chunked_request_bodies_are_processed_like_plain_ones(api: Api) -> None:
    """A gzip body streamed chunked (no Content-Length) is decoded once, like a plain body."""
    definition = {"tableId": "x", "schemaETag": None, "orderedColumns": CENSUS_COLUMNS}
    headers = {
        **ODK,
        **api.auth_headers(),
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    created = await api.client.put(
        api.app_url("/tables/zipped"),
        data=gzip_stream(json.dumps(definition).encode()),
        headers=headers,
    )
    assert created.status == 200, await created.text()
    assert created.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in created.request_info.headers
    zipped = Table(await created.json())
    plain_response = await api.request(
        "PUT", api.app_url("/tables/plain"), json_body={**definition, "tableId": "plain"}
    )
    assert plain_response.status == 200
    plain = Table(await plain_response.json())

    rows = [row(name="Ana", age="34", location_latitude="38.7223"), row(name="Rui")]
    body = json.dumps({"rows": rows, "dataETag": None}).encode()
    pushed = await api.client.put(
        api.path(zipped.data_uri), data=gzip_stream(body, chunk=100), headers=headers
    )
    assert pushed.status == 200, await pushed.text()
    assert pushed.request_info.headers.get("Transfer-Encoding") == "chunked"
    zipped_outcomes = await pushed.json()
    plain_outcomes = await api.push(plain, rows, None)

    def essence(outcomes: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(o["id"], o["outcome"], o["deleted"]) for o in outcomes["rows"]]

    assert essence(zipped_outcomes) == essence(plain_outcomes)
    assert [o["outcome"] for o in zipped_outcomes["rows"]] == ["SUCCESS", "SUCCESS"]
    zipped_rows = (await api.get_json(zipped.data_uri))["rows"]
    plain_rows = (await api.get_json(plain.data_uri))["rows"]
    assert [(r["id"], values_of(r)) for r in zipped_rows] == [
        (r["id"], values_of(r)) for r in plain_rows
    ]
    assert values_of(zipped_rows[0])["name"] == "Ana"


async def test_gzip_request_with_content_length_and_deflate_body(api: Api) -> None:
    """A gzip body with a Content-Length and a zlib (deflate) body are decoded as well."""
    table = await api.create_table()
    first = row(name="gzip")
    result = await api.push(table, [first], None)  # helper sends gzip with a length
    assert result["rows"][0]["outcome"] == "SUCCESS"
    second = row(name="deflate")
    body = zlib.compress(json.dumps({"rows": [second], "dataETag": result["dataETag"]}).encode())
    response = await api.request(
        "PUT",
        table.data_uri,
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"},
    )
    assert response.status == 200, await response.text()
    names = sorted(values_of(r)["name"] or "" for r in (await api.get_json(table.data_uri))["rows"])
    assert names == ["deflate", "gzip"]


async def test_gzip_response_when_accepted(api: Api) -> None:
    """With Accept-Encoding: gzip a JSON response comes gzip-encoded; without it, plain."""
    table, _ = await _table_with_rows(api, 20)
    path = api.path(table.data_uri)
    zipped = await api.client.get(
        path,
        headers={**ODK, **api.auth_headers(), "Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert zipped.status == 200
    assert zipped.headers.get("Content-Encoding") == "gzip"
    decoded = json.loads(gzip.decompress(await zipped.read()))
    assert len(decoded["rows"]) == 20
    assert_odk_headers(zipped)

    plain = await api.client.get(
        path,
        headers={**ODK, **api.auth_headers(), "Accept-Encoding": "identity"},
        auto_decompress=False,
    )
    assert plain.status == 200
    assert plain.headers.get("Content-Encoding") is None
    assert json.loads(await plain.read()) == decoded


async def test_compressed_response_varies_on_accept_encoding(api: Api) -> None:
    """A gzip-compressed response says `Vary: Accept-Encoding` (§2.2)."""
    table, _ = await _table_with_rows(api, 20)
    zipped = await api.client.get(
        api.path(table.data_uri),
        headers={**ODK, **api.auth_headers(), "Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert zipped.headers.get("Content-Encoding") == "gzip"
    assert "accept-encoding" in zipped.headers.get("Vary", "").lower()


async def test_json_responses_have_json_content_type(api: Api) -> None:
    """Every JSON entity is served as application/json in UTF-8 (§2.3, item 7)."""
    table, _ = await _table_with_rows(api, 1)
    urls = [
        "/odktables/",
        api.app_url("/privilegesInfo"),
        api.app_url("/usersInfo"),
        api.app_url("/tables"),
        api.app_url(f"/tables/{table.table_id}"),
        table.definition_uri,
        table.data_uri,
        table.diff_uri,
        table.diff_uri + "/changeSets",
    ]
    for url in urls:
        response = await api.request("GET", url)
        assert response.status == 200, (url, await response.text())
        assert response.content_type == "application/json", url
        assert response.charset in (None, "utf-8", "UTF-8"), url


async def test_response_entities_have_exactly_the_client_fields(api: Api) -> None:
    """Each entity the client parses has exactly the fields of CLIENT_FLOW §3.3."""
    table, pushed = await _table_with_rows(api, 2)
    assert_outcome_list_shape(pushed)
    first = pushed["rows"][0]

    listing = await api.get_json(api.app_url("/tables"))
    assert set(listing) == TABLE_RESOURCE_LIST_KEYS
    for resource in listing["tables"]:
        assert set(resource) == TABLE_RESOURCE_KEYS
    resource = await api.get_json(api.app_url(f"/tables/{table.table_id}"))
    assert set(resource) == TABLE_RESOURCE_KEYS
    assert set(table.resource) == TABLE_RESOURCE_KEYS

    definition = await api.get_json(table.definition_uri)
    assert set(definition) == DEFINITION_RESOURCE_KEYS
    for column in definition["orderedColumns"]:
        assert set(column) == COLUMN_KEYS

    rows = await api.get_json(table.data_uri)
    assert_row_list_shape(rows)
    single = await api.get_json(rows["rows"][0]["selfUri"])
    assert_row_resource_shape(single)
    diff = await api.get_json(table.diff_uri)
    assert_row_list_shape(diff)

    conflict = await api.push(
        table,
        [row(first["id"], row_etag=new_id(), name="other")],
        pushed["dataETag"],
    )
    assert_outcome_list_shape(conflict)
    assert conflict["rows"][0]["outcome"] == "IN_CONFLICT"
    assert set(conflict["rows"][0]) == ROW_OUTCOME_KEYS

    privileges = await api.get_json(api.app_url("/privilegesInfo"))
    assert set(privileges) == PRIVILEGES_KEYS
    users = await api.get_json(api.app_url("/usersInfo"))
    assert users
    for user in users:
        assert set(user) == USER_INFO_KEYS
    change_sets = await api.get_json(table.diff_uri + "/changeSets")
    assert set(change_sets) == CHANGE_SET_LIST_KEYS
    change_set_rows = await api.get_json(f"{table.diff_uri}/changeSets/{pushed['dataETag']}")
    assert_row_list_shape(change_set_rows)


async def test_urls_are_absolute_and_carry_no_query_string(api: Api) -> None:
    """Generated URLs are absolute, follow §2.7 and never include the request's query."""
    table, pushed = await _table_with_rows(api, 2)
    base = f"http://{api.client.host}:{api.client.port}/odktables/default"
    params = {"fetchLimit": "1", "unknown": "x"}
    entities = [
        await api.get_json(api.app_url("/tables"), params=params),
        await api.get_json(api.app_url(f"/tables/{table.table_id}"), params={"a": "b"}),
        await api.get_json(table.definition_uri, params={"a": "b"}),
        await api.get_json(table.data_uri, params=params),
        await api.get_json(table.diff_uri, params=params),
        pushed,
    ]
    urls = [url for entity in entities for url in _urls(entity)]
    assert len(urls) > 10
    for url in urls:
        assert url.startswith(base + "/"), url
        assert "?" not in url, url
        assert "#" not in url, url
    tid, schema = table.table_id, table.schema_etag
    resource = entities[1]
    assert resource["selfUri"] == f"{base}/tables/{tid}"
    assert resource["definitionUri"] == f"{base}/tables/{tid}/ref/{schema}"
    assert resource["dataUri"] == f"{base}/tables/{tid}/ref/{schema}/rows"
    assert resource["diffUri"] == f"{base}/tables/{tid}/ref/{schema}/diff"
    assert resource["instanceFilesUri"] == f"{base}/tables/{tid}/ref/{schema}/attachments"
    assert resource["aclUri"] == f"{base}/tables/{tid}/acl"
    first_row = entities[3]["rows"][0]
    assert first_row["selfUri"] == f"{base}/tables/{tid}/ref/{schema}/rows/{first_row['id']}"
    assert pushed["tableUri"] == f"{base}/tables/{tid}"


async def test_forwarded_headers_from_a_trusted_proxy_give_https_urls(api: Api) -> None:
    """X-Forwarded-Proto/Host from a trusted proxy (127.0.0.1) shape every URL (D15)."""
    table, _ = await _table_with_rows(api, 1)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sync.example.org"}
    resource = await api.get_json(api.app_url(f"/tables/{table.table_id}"), headers=forwarded)
    for url in _urls(resource):
        assert url.startswith("https://sync.example.org/odktables/default/tables/"), url
    rows = await api.get_json(
        table.data_uri,
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sync.example.org:8443"},
    )
    for url in _urls(rows):
        assert url.startswith("https://sync.example.org:8443/odktables/default/"), url
    only_proto = await api.get_json(api.app_url("/tables"), headers={"X-Forwarded-Proto": "https"})
    host = f"{api.client.host}:{api.client.port}"
    for url in _urls(only_proto):
        assert url.startswith(f"https://{host}/odktables/"), url


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ()}])
async def test_forwarded_headers_from_an_untrusted_client_are_ignored(api: Api) -> None:
    """Without a trusted proxy the forwarding headers change nothing (D15)."""
    table, _ = await _table_with_rows(api, 1)
    resource = await api.get_json(
        api.app_url(f"/tables/{table.table_id}"),
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )
    for url in _urls(resource):
        assert url.startswith(f"http://{api.client.host}:{api.client.port}/odktables/"), url


async def test_unknown_query_parameters_are_ignored(api: Api) -> None:
    """Parameters the protocol does not define change nothing (§2.11, item 12, quirk 8.20)."""
    table, pushed = await _table_with_rows(api, 3)
    change_set = f"{table.diff_uri}/changeSets/{pushed['dataETag']}"
    for url, extra in [
        (api.app_url("/tables"), {"getFullLog": "true"}),
        (table.data_uri, {"FetchLimit": "1", "foo": "bar"}),
        (table.diff_uri, {"getFullLog": "true"}),
        (change_set, {"data_etag": "true"}),
    ]:
        plain = await api.get_json(url)
        with_extra = await api.get_json(url, params=extra)
        assert with_extra == plain, url


async def test_repeated_get_with_if_none_match_gets_304(api: Api) -> None:
    """GETs carry an unquoted ETag; If-None-Match equal to it yields a bodyless 304 (§2.6)."""
    table, pushed = await _table_with_rows(api, 2)
    for url in (api.app_url(f"/tables/{table.table_id}"), table.data_uri, table.definition_uri):
        first = await api.request("GET", url)
        etag = first.headers["ETag"]
        assert etag
        assert not etag.startswith(('"', "W/")), etag
        again = await api.request("GET", url)
        assert again.headers["ETag"] == etag
        cached = await api.request("GET", url, headers={"If-None-Match": etag})
        assert cached.status == 304
        assert cached.headers["ETag"] == etag
        assert await cached.read() == b""
        assert_odk_headers(cached)
        other = await api.request("GET", url, headers={"If-None-Match": f'"{etag}"'})
        assert other.status == 200

    before = await api.request("GET", table.data_uri)
    await api.push(table, [row(name="new")], pushed["dataETag"])
    after = await api.request(
        "GET", table.data_uri, headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status == 200
    assert after.headers["ETag"] != before.headers["ETag"]


async def test_put_with_if_none_match_is_never_304(api: Api) -> None:
    """The automatic ETag applies to GETs only; a write is never answered 304 (quirk 8.25)."""
    table = await api.create_table()
    body: dict[str, Any] = {"rows": [], "dataETag": None}
    first = await api.request("PUT", table.data_uri, json_body=body)
    assert first.status == 200
    etag = first.headers.get("ETag") or "md5:" + hashlib.md5(await first.read()).hexdigest()
    again = await api.request(
        "PUT", table.data_uri, json_body=body, headers={"If-None-Match": etag}
    )
    assert again.status == 200
