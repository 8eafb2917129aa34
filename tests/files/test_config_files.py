"""App-level and table-level config files and their manifests (SYNC_PROTOCOL §2.5, §2.6, §3.2,
§3.6–3.10, §5.12, §5.13; quirks 8.7–8.10; D10, D11, D15; §9 items 5, 29–30, 48, 52–53, 94–110)."""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from tests.files.support import (
    EMPTY_MANIFEST_ETAG,
    ENTRY_KEYS,
    OCTET_STREAM,
    blob_counts,
    download,
    file_url,
    get_manifest,
    gzip_chunks,
    listed_names,
    manifest_url,
    md5_of,
    reference_manifest_etag,
    row_manifest,
    send,
    upload,
    upload_batch,
    upload_ok,
)
from tests.helpers import Api

ALL_BYTES = bytes(range(256))
TEXT = "línea 1\r\nline 2\n\ttab ☃ — ünïcödé\r\n\r\nend without newline".encode()


def _etag_of(body: dict[str, Any]) -> str:
    return reference_manifest_etag({e["filename"]: e["md5hash"] for e in body["files"]})


async def _tables_etags(api: Api, table_id: str) -> tuple[str, str]:
    """(appLevelManifestETag of GET tables, tableLevelManifestETag of GET tables/{t})."""
    listing = await api.get_json(api.app_url("/tables"))
    resource = await api.get_json(api.app_url(f"/tables/{table_id}"))
    listed = [t for t in listing["tables"] if t["tableId"] == table_id]
    assert listed
    assert listed[0]["tableLevelManifestETag"] == resource["tableLevelManifestETag"]
    return listing["appLevelManifestETag"], resource["tableLevelManifestETag"]


def test_reference_manifest_etag_matches_the_spec_example() -> None:
    """The test's own §5.13.4 implementation reproduces the worked example of §3.6."""
    assert (
        reference_manifest_etag(
            {
                "assets/app.properties": "md5:6f5902ac237024bdd0c176cb93063dc4",
                "assets/index.html": "md5:391ebb4c8dada0793c3d9a1ef3bb1a58",
            }
        )
        == "77c44103b43fe7abec8cc5b2e998279a"
    )
    assert reference_manifest_etag({}) == EMPTY_MANIFEST_ETAG


@pytest.mark.parametrize(
    ("path", "data", "content_type"),
    [
        ("assets/all-bytes.bin", ALL_BYTES * 4, OCTET_STREAM),
        ("assets/random.bin", random.Random(1234).randbytes(3 * 1024 * 1024), OCTET_STREAM),
        ("assets/text/notes.txt", TEXT, "text/plain; charset=utf-8"),
    ],
    ids=["all-byte-values", "random-3MB", "utf8-text"],
)
async def test_round_trip_is_byte_identical(
    api: Api, path: str, data: bytes, content_type: str
) -> None:
    """A file POSTed (gzip) comes back byte-identical from GET and its downloadUrl, with the
    manifest stating its exact length, type and md5 (items 94, 95, 99)."""
    response = await upload(api, path, data, content_type=content_type)
    assert response.status == 201, await response.text()
    body, _ = await get_manifest(api)
    (entry,) = body["files"]
    assert entry == {
        "filename": path,
        "contentLength": len(data),
        "contentType": content_type,
        "md5hash": md5_of(data),
        "downloadUrl": response.headers["Location"],
    }
    for url in (file_url(api, path), entry["downloadUrl"]):
        got, content = await download(api, url)
        assert got.status == 200
        assert content == data
        assert got.headers["ETag"] == md5_of(data)
        assert got.headers["Content-Type"] == content_type
        if "Content-Encoding" not in got.headers:
            assert got.headers["Content-Length"] == str(len(data))


async def test_gzip_chunked_upload_is_stored_decompressed(api: Api) -> None:
    """A gzip body sent chunked without Content-Length is decoded once and stored decompressed;
    length and md5 in the manifest describe the decoded bytes (§2.5, item 5, D10)."""
    data = random.Random(7).randbytes(300_000) + b"\0" * 200_000
    headers = {**api.auth_headers(), "Content-Type": OCTET_STREAM, "Content-Encoding": "gzip"}
    response = await api.client.post(
        file_url(api, "assets/zipped.bin"), data=gzip_chunks(data, 4096), headers=headers
    )
    assert response.status == 201, await response.text()
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request_info.headers
    body, _ = await get_manifest(api)
    (entry,) = body["files"]
    assert (entry["contentLength"], entry["md5hash"]) == (len(data), md5_of(data))
    got, content = await download(api, file_url(api, "assets/zipped.bin"))
    assert got.status == 200
    assert content == data


async def test_deflate_upload_is_stored_decompressed(api: Api) -> None:
    """A `Content-Encoding: deflate` (zlib) body is decoded as well (§2.5 SHOULD)."""
    data = TEXT * 100
    response = await send(
        api,
        "POST",
        file_url(api, "assets/deflated.txt"),
        data=zlib.compress(data),
        headers={"Content-Encoding": "deflate", "Content-Type": "text/plain"},
    )
    assert response.status == 201, await response.text()
    body, _ = await get_manifest(api)
    assert body["files"][0]["md5hash"] == md5_of(data)
    _, content = await download(api, file_url(api, "assets/deflated.txt"))
    assert content == data


async def test_new_file_201_replacement_202_with_location(api: Api) -> None:
    """First upload 201, replacement 202 (D11), both with Location = the manifest downloadUrl,
    and the replacement's content and md5 win (item 110)."""
    first = await upload(api, "assets/app.properties", b"a=1\n")
    assert first.status == 201
    second = await upload(api, "assets/app.properties", b"a=2\n")
    assert second.status == 202
    body, _ = await get_manifest(api)
    (entry,) = body["files"]
    assert first.headers["Location"] == second.headers["Location"] == entry["downloadUrl"]
    assert entry["downloadUrl"].startswith(("http://", "https://"))
    assert entry["downloadUrl"].endswith("/odktables/default/files/2/assets/app.properties")
    assert entry["md5hash"] == md5_of(b"a=2\n")
    _, content = await download(api, entry["downloadUrl"])
    assert content == b"a=2\n"


async def test_content_type_is_stored_verbatim(api: Api) -> None:
    """Any Content-Type is stored and served exactly as sent (§3.9)."""
    odd = 'application/x-Custom+json; charset=ISO-8859-1; profile="a b"'
    await upload_ok(api, "assets/odd.json", b"{}", content_type=odd)
    body, _ = await get_manifest(api)
    assert body["files"][0]["contentType"] == odd
    got, _ = await download(api, file_url(api, "assets/odd.json"))
    assert got.headers["Content-Type"] == odd


async def test_missing_content_type_defaults_to_octet_stream(api: Api) -> None:
    """An upload without Content-Type is stored as application/octet-stream (D11, quirk 8.9)."""
    response = await api.client.post(
        file_url(api, "assets/untyped"),
        data=b"no type",
        headers=api.auth_headers(),
        skip_auto_headers=["Content-Type"],
    )
    assert "Content-Type" not in response.request_info.headers
    assert response.status == 201, await response.text()
    body, _ = await get_manifest(api)
    assert body["files"][0]["contentType"] == OCTET_STREAM
    got, _ = await download(api, file_url(api, "assets/untyped"))
    assert got.headers["Content-Type"] == OCTET_STREAM


async def test_download_etag_and_304(api: Api) -> None:
    """GET has ETag `md5:…`; If-None-Match with it answers 304, ETag, no body (item 100)."""
    await upload_ok(api, "assets/index.html", b"<html></html>", content_type="text/html")
    url = file_url(api, "assets/index.html")
    got, _ = await download(api, url)
    assert got.headers["ETag"] == md5_of(b"<html></html>")
    cached, content = await download(api, url, headers={"If-None-Match": got.headers["ETag"]})
    assert cached.status == 304
    assert cached.headers["ETag"] == got.headers["ETag"]
    assert cached.headers["X-OpenDataKit-Version"] == "2.0"
    assert content == b""
    stale, content = await download(api, url, headers={"If-None-Match": md5_of(b"old")})
    assert stale.status == 200
    assert content == b"<html></html>"


async def test_as_attachment_adds_content_disposition(api: Api) -> None:
    """`?as_attachment=true` adds `Content-Disposition: attachment; filename="<path>"`
    (item 102)."""
    await upload_ok(api, "assets/js/app.js", b"var a;", content_type="application/javascript")
    url = file_url(api, "assets/js/app.js")
    plain, _ = await download(api, url)
    assert "Content-Disposition" not in plain.headers
    got, content = await download(api, url, params={"as_attachment": "true"})
    assert got.status == 200
    assert content == b"var a;"
    assert got.headers["Content-Disposition"] == 'attachment; filename="assets/js/app.js"'


async def test_missing_file_is_404(api: Api) -> None:
    """GET of a path that was never uploaded answers 404 RESOURCE_NOT_FOUND (item 101)."""
    response = await api.request("GET", file_url(api, "assets/nothing-here.txt"))
    assert response.status == 404
    assert (await response.json())["type"] == "RESOURCE_NOT_FOUND"


async def test_delete_is_200_and_idempotent(api: Api) -> None:
    """DELETE removes the file (manifest and GET) with 200; deleting again is 200 (item 107)."""
    await upload_ok(api, "assets/gone.txt", b"bye")
    url = file_url(api, "assets/gone.txt")
    first = await api.request("DELETE", url)
    assert first.status == 200
    assert await listed_names(api) == []
    assert (await api.request("GET", url)).status == 404
    again = await api.request("DELETE", url)
    assert again.status == 200
    never = await api.request("DELETE", file_url(api, "assets/never/existed.txt"))
    assert never.status == 200


async def test_manifest_shape_sorting_and_trailing_slash(api: Api) -> None:
    """The app manifest answers with and without trailing slash, entries sorted by filename with
    exactly the five entry keys, ETag per §5.13.4 (items 95, 96; §3.6)."""
    names = ["b.txt", "assets/z.txt", "assets/a/b.txt", "A.txt", "assets/index.html"]
    for number, name in enumerate(names):
        await upload_ok(api, name, f"file {number}".encode())
    with_slash = await api.request("GET", api.app_url("/manifest/2/"))
    without_slash = await api.request("GET", api.app_url("/manifest/2"))
    assert with_slash.status == without_slash.status == 200
    body = await with_slash.json()
    assert body == await without_slash.json()
    assert with_slash.headers["ETag"] == without_slash.headers["ETag"] == _etag_of(body)
    assert with_slash.content_type == "application/json"
    assert [e["filename"] for e in body["files"]] == sorted(names)
    for entry in body["files"]:
        assert set(entry) == ENTRY_KEYS
        assert isinstance(entry["contentLength"], int)


async def test_manifest_etags_agree_with_table_list(api: Api) -> None:
    """The manifest ETag headers equal appLevelManifestETag of GET tables and
    tableLevelManifestETag of GET tables/{t}, before and after uploads (items 52, 53)."""
    table = await api.create_table("census")
    app_etag, table_etag = await _tables_etags(api, "census")
    assert app_etag == table_etag == EMPTY_MANIFEST_ETAG
    await upload_ok(api, "assets/index.html", b"<p>", content_type="text/html")
    await upload_ok(api, "tables/census/properties.csv", b"_partition\r\n", content_type="text/csv")
    await upload_ok(api, "assets/csv/census.csv", b"_id\r\n", content_type="text/csv")
    app_body, app_header = await get_manifest(api)
    table_body, table_header = await get_manifest(api, "census")
    assert (app_header, table_header) == await _tables_etags(api, table.table_id)
    assert app_header == _etag_of(app_body) != EMPTY_MANIFEST_ETAG
    assert table_header == _etag_of(table_body) != EMPTY_MANIFEST_ETAG
    assert app_header != table_header


async def test_manifest_etag_changes_only_with_content(api: Api) -> None:
    """Upload and delete change the manifest ETag; a byte-identical re-upload does not (item 98)."""
    _, empty = await get_manifest(api)
    assert empty == EMPTY_MANIFEST_ETAG
    await upload_ok(api, "assets/a.txt", b"one")
    _, after_upload = await get_manifest(api)
    assert after_upload != empty
    await upload_ok(api, "assets/a.txt", b"one")
    _, after_same = await get_manifest(api)
    assert after_same == after_upload
    await upload_ok(api, "assets/a.txt", b"two")
    _, after_change = await get_manifest(api)
    assert after_change not in (after_upload, empty)
    await upload_ok(api, "assets/b.txt", b"one")
    _, after_second = await get_manifest(api)
    assert after_second != after_change
    assert (await api.request("DELETE", file_url(api, "assets/b.txt"))).status == 200
    _, after_delete = await get_manifest(api)
    assert after_delete == after_change


async def test_manifest_304_on_if_none_match(api: Api) -> None:
    """A manifest GET with If-None-Match = its ETag answers 304 with the ETag, no body (item 97);
    the empty manifest has ETag d41d8cd98f00b204e9800998ecf8427e (item 96)."""
    await api.create_table("census")
    for table_id in (None, "census"):
        _, etag = await get_manifest(api, table_id)
        assert etag == EMPTY_MANIFEST_ETAG
        url = manifest_url(api, table_id)
        cached = await api.request("GET", url, headers={"If-None-Match": etag})
        assert cached.status == 304
        assert cached.headers["ETag"] == etag
        assert await cached.read() == b""
    await upload_ok(api, "assets/x.txt", b"x")
    await upload_ok(api, "tables/census/x.txt", b"x")
    for table_id in (None, "census"):
        _, etag = await get_manifest(api, table_id)
        assert etag != EMPTY_MANIFEST_ETAG
        url = manifest_url(api, table_id)
        old = await api.request("GET", url, headers={"If-None-Match": EMPTY_MANIFEST_ETAG})
        assert old.status == 200
        cached = await api.request("GET", url, headers={"If-None-Match": etag})
        assert cached.status == 304
        assert cached.headers["ETag"] == etag


@pytest.mark.parametrize(
    "path",
    [
        "tables/census/forms/census/formDef.json",
        "tables/census/properties.csv",
        "assets/csv/census.csv",
        "assets/csv/census.updated.csv",
        "assets/csv/census/instances/x.jpg",
        "assets/csv/census.v2/x",
    ],
)
async def test_table_level_classification(api: Api, path: str) -> None:
    """Paths of table `census` (client classification, §5.13.1, quirk 8.7, D11) appear only in its
    table manifest, never in the app manifest (items 103, 104)."""
    await api.create_table("census")
    await upload_ok(api, path, b"content of " + path.encode())
    assert await listed_names(api, "census") == [path]
    assert await listed_names(api) == []
    got, content = await download(api, file_url(api, path))
    assert got.status == 200
    assert content == b"content of " + path.encode()


@pytest.mark.parametrize(
    "path", ["tables/.DS_Store/x", "assets/index.html", "assets/app.properties", "index.html"]
)
async def test_app_level_classification(api: Api, path: str) -> None:
    """`tables/.DS_Store/x` and ordinary assets are app-level: listed only in the app manifest
    (item 105)."""
    await api.create_table("census")
    await upload_ok(api, path, b"app level")
    assert await listed_names(api) == [path]
    assert await listed_names(api, "census") == []


@pytest.mark.parametrize(
    "path",
    ["tables/nope/x.txt", "tables/nope/forms/nope/formDef.json", "assets/csv/nope.csv"],
)
async def test_table_level_path_of_unknown_table_is_404(api: Api, path: str) -> None:
    """GET, POST and DELETE of a table-level path of a table that does not exist answer 404 and
    store nothing (item 108, quirk 8.23)."""
    assert (await upload(api, path, b"x")).status == 404
    assert (await api.request("GET", file_url(api, path))).status == 404
    assert (await api.request("DELETE", file_url(api, path))).status == 404
    assert await listed_names(api, "nope") == []
    assert await listed_names(api) == []


async def test_manifest_of_unknown_table_is_empty(api: Api) -> None:
    """The table manifest of a table that does not exist is 200 `{"files":[]}` (item 109)."""
    response = await api.request("GET", manifest_url(api, "no_such_table"))
    assert response.status == 200
    assert await response.json() == {"files": []}
    assert response.headers["ETag"] == EMPTY_MANIFEST_ETAG


async def test_client_versions_are_separate(api: Api) -> None:
    """Version-3 files are absent from version-2 manifests, listed in version-3 ones, and
    clientVersions lists both, sorted, with a working 304 (items 29, 30, 106)."""
    versions = await api.request("GET", api.app_url("/clientVersions"))
    assert versions.status == 200
    assert await versions.json() == []
    await api.create_table("census")
    await upload_ok(api, "assets/index.html", b"v2", content_type="text/html")
    await upload_ok(api, "assets/index.html", b"v3", version="3", content_type="text/html")
    await upload_ok(api, "tables/census/properties.csv", b"v3 table", version="3")
    v2, v2_etag = await get_manifest(api)
    assert [e["md5hash"] for e in v2["files"]] == [md5_of(b"v2")]
    assert await listed_names(api, "census") == []
    v3, v3_etag = await get_manifest(api, version="3")
    assert [e["md5hash"] for e in v3["files"]] == [md5_of(b"v3")]
    assert v3["files"][0]["downloadUrl"].endswith("/files/3/assets/index.html")
    assert await listed_names(api, "census", version="3") == ["tables/census/properties.csv"]
    assert v2_etag != v3_etag
    app_etag, table_etag = await _tables_etags(api, "census")
    assert (app_etag, table_etag) == (v2_etag, EMPTY_MANIFEST_ETAG)
    _, content = await download(api, file_url(api, "assets/index.html", version="3"))
    assert content == b"v3"

    versions = await api.request("GET", api.app_url("/clientVersions"))
    assert versions.status == 200
    assert await versions.json() == ["2", "3"]
    etag = versions.headers["ETag"]
    cached = await api.request(
        "GET", api.app_url("/clientVersions"), headers={"If-None-Match": etag}
    )
    assert cached.status == 304
    assert cached.headers["ETag"] == etag


async def test_zero_length_file_stored_served_but_never_listed(api: Api) -> None:
    """A zero-length file is stored (201), served with 200 and an empty body, and never listed in
    a manifest, whose ETag it leaves alone (D11, quirk 8.10)."""
    await api.create_table("census")
    _, app_before = await get_manifest(api)
    _, table_before = await get_manifest(api, "census")
    for path in ("assets/empty.txt", "tables/census/empty.csv"):
        response = await upload(api, path, b"")
        assert response.status == 201, await response.text()
        got, content = await download(api, file_url(api, path))
        assert got.status == 200
        assert content == b""
        assert got.headers["ETag"] == md5_of(b"")
    app_body, app_after = await get_manifest(api)
    table_body, table_after = await get_manifest(api, "census")
    assert app_body == table_body == {"files": []}
    assert (app_after, table_after) == (app_before, table_before)
    assert await _tables_etags(api, "census") == (app_before, table_before)
    assert (await api.request("DELETE", file_url(api, "assets/empty.txt"))).status == 200
    assert (await api.request("GET", file_url(api, "assets/empty.txt"))).status == 404


async def test_only_administrators_may_write_files(api: Api) -> None:
    """A synchronizing user gets 403 on POST and DELETE, never 2xx, and the file set is unchanged;
    a table administrator may write (items 19, 20)."""
    await api.create_table("census")
    await upload_ok(api, "assets/index.html", b"admin's")
    await upload_ok(api, "tables/census/properties.csv", b"admin's table")
    before = (await get_manifest(api), await get_manifest(api, "census"))
    alice = api.as_user("alice")
    for path in ("assets/index.html", "assets/new.txt", "tables/census/properties.csv"):
        posted = await upload(alice, path, b"alice's")
        assert posted.status == 403, await posted.text()
        deleted = await alice.request("DELETE", file_url(api, path))
        assert deleted.status == 403, await deleted.text()
        assert posted.headers["X-OpenDataKit-Version"] == "2.0"
    assert (await get_manifest(api), await get_manifest(api, "census")) == before
    # Alice may still read.
    got, content = await download(alice, file_url(api, "assets/index.html"))
    assert got.status == 200
    assert content == b"admin's"
    tables_admin = api.as_user("tables_admin")
    assert (await upload(tables_admin, "assets/new.txt", b"ok")).status == 201
    assert (await tables_admin.request("DELETE", file_url(api, "assets/new.txt"))).status == 200


async def test_table_delete_removes_its_files_and_attachments(api: Api) -> None:
    """Deleting a table removes its table-level files of every client version and its row
    attachments; app-level files stay; a re-created table starts empty (§5.12, item 48)."""
    table = await api.create_table("census")
    await upload_ok(api, "assets/index.html", b"app")
    await upload_ok(api, "tables/census/properties.csv", b"v2")
    await upload_ok(api, "tables/census/properties.csv", b"v3", version="3")
    await upload_ok(api, "assets/csv/census.csv", b"csv")
    await upload_ok(api, "assets/csv/census.v2/x", b"qualified", version="3")
    row_id = "uuid:7f2d3c1e-0000-4000-8000-00000000abcd"
    uploaded = await upload_batch(api, table, row_id, [("a.jpg", "image/jpeg", b"\xff\xd8jpeg")])
    assert uploaded.status == 201, await uploaded.text()
    assert (await api.request("DELETE", table.definition_uri)).status == 200

    again = await api.create_table("census")
    assert again.schema_etag != table.schema_etag
    for version in ("2", "3"):
        body, etag = await get_manifest(api, "census", version)
        assert body == {"files": []}
        assert etag == EMPTY_MANIFEST_ETAG
    for path, version in [("tables/census/properties.csv", "3"), ("assets/csv/census.csv", "2")]:
        assert (await api.request("GET", file_url(api, path, version))).status == 404
    assert await listed_names(api) == ["assets/index.html"]
    rows, etag = await row_manifest(api, again, row_id)
    assert rows == {"files": []}
    _, table_etag = await _tables_etags(api, "census")
    assert table_etag == EMPTY_MANIFEST_ETAG
    assert await api.get_json(api.app_url("/clientVersions")) == ["2"]
    # Only the app-level file's bytes are left in the (database) blob store.
    assert (await blob_counts(api))[0] == 1


@pytest.mark.parametrize(
    "settings_overrides",
    [{"blob_store": "database"}, {"blob_store": "filesystem"}],
    ids=["database-blobs", "filesystem-blobs"],
)
async def test_identical_contents_survive_each_others_removal(api: Api) -> None:
    """Files and attachments with identical bytes stay readable when one of them is deleted or
    replaced (the filesystem store shares one content-addressed blob between them)."""
    table = await api.create_table("census")
    same = b"identical bytes " * 1000
    for path in ("assets/a.txt", "assets/b.txt", "tables/census/c.txt"):
        await upload_ok(api, path, same)
    row_id = "uuid:5a4e0000-0000-4000-8000-000000000001"
    uploaded = await upload_batch(api, table, row_id, [("same.bin", OCTET_STREAM, same)])
    assert uploaded.status == 201
    assert (await api.request("DELETE", file_url(api, "assets/a.txt"))).status == 200
    await upload_ok(api, "assets/b.txt", b"replaced")
    await upload_ok(api, "assets/b.txt", same)
    await upload_ok(api, "assets/b.txt", b"replaced again")
    for url in (
        file_url(api, "tables/census/c.txt"),
        f"{table.resource['instanceFilesUri']}/{row_id}/file/same.bin",
    ):
        got, content = await download(api, url)
        assert got.status == 200
        assert content == same
    _, content = await download(api, file_url(api, "assets/b.txt"))
    assert content == b"replaced again"
