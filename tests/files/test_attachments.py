"""Row attachments: row manifest, Android's batch upload and download, single files
(SYNC_PROTOCOL §3.25–3.30, §5.14, quirks 8.28/8.29; CLIENT_FLOW §2.10, §3.1 A16–A18, §3.2; D11;
§9 items 113–127)."""

from __future__ import annotations

import random

import pytest

from tests.files.support import (
    ENTRY_KEYS,
    download,
    download_request,
    md5_of,
    parse_like_android,
    row_manifest,
    row_url,
    send,
    upload_batch,
    url_path,
)
from tests.helpers import Api, Table, new_id, row

JPEG = b"\xff\xd8\xff\xe0" + random.Random(5).randbytes(40_000) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + random.Random(6).randbytes(5_000)
AUDIO = random.Random(8).randbytes(70_001)
FILES = [
    ("a.jpg", "image/jpeg", JPEG),
    ("fotos/ção 1.jpg", "image/jpeg", PNG[:3000] + JPEG[:3000]),
    ("fotos/sub/deep/β.png", "image/png", PNG),
    ("audio.3gpp", "audio/3gpp", AUDIO),
    ("empty-looking.txt", "text/plain", b"\r\n--not a boundary\r\n"),
]


async def _table(api: Api) -> Table:
    return await api.create_table("census")


async def _batch_download(
    api: Api, table: Table, row_id: str, names: list[str]
) -> tuple[str, bytes]:
    response = await api.request(
        "POST",
        row_url(table, row_id, "download"),
        json_body=download_request(names),
        headers={"Content-Type": "application/json"},
    )
    body = await response.read()
    assert response.status == 200, body[:500]
    return response.headers["Content-Type"], body


async def test_row_without_files_has_empty_manifest(api: Api) -> None:
    """The manifest of a row without attachments is 200 `{"files":[]}` with an ETag (item 113)."""
    table = await _table(api)
    response = await api.request("GET", row_url(table, new_id(), "manifest"))
    assert response.status == 200
    assert await response.json() == {"files": []}
    assert response.headers["ETag"]
    assert response.headers["X-OpenDataKit-Version"] == "2.0"


async def test_android_batch_upload_and_manifest(api: Api) -> None:
    """Android's multipart batch (disposition `file`, non-ASCII names, subfolders) answers 201
    with Location = the row manifest URL; the manifest lists every file exactly (items 114–116)."""
    table = await _table(api)
    row_id = new_id()
    _, empty_etag = await row_manifest(api, table, row_id)
    response = await upload_batch(api, table, row_id, FILES)
    assert response.status == 201, await response.text()
    assert response.headers["Location"] == row_url(table, row_id, "manifest")
    assert await response.read() == b""

    body, etag = await row_manifest(api, table, row_id)
    assert etag != empty_etag
    entries = body["files"]
    assert [e["filename"] for e in entries] == sorted(name for name, _, _ in FILES)
    expected = {name: (kind, data) for name, kind, data in FILES}
    for entry in entries:
        kind, data = expected[entry["filename"]]
        assert set(entry) == ENTRY_KEYS
        assert entry["contentLength"] == len(data)
        assert entry["contentType"] == kind
        assert entry["md5hash"] == md5_of(data)
        suffix = f"/attachments/{row_id}/file/{url_path(entry['filename'])}"
        assert entry["downloadUrl"] == row_url(table, row_id, f"file/{url_path(entry['filename'])}")
        assert entry["downloadUrl"].endswith(suffix)
        got, content = await download(api, entry["downloadUrl"])
        assert got.status == 200
        assert content == data
        assert got.headers["ETag"] == md5_of(data)
        assert got.headers["Content-Type"] == kind

    cached = await api.request(
        "GET", row_url(table, row_id, "manifest"), headers={"If-None-Match": etag}
    )
    assert cached.status == 304
    assert cached.headers["ETag"] == etag
    assert await cached.read() == b""
    stale = await api.request(
        "GET", row_url(table, row_id, "manifest"), headers={"If-None-Match": empty_etag}
    )
    assert stale.status == 200


async def test_manifest_etag_changes_with_each_new_file(api: Api) -> None:
    """Every upload of a new file changes the row-manifest ETag; an identical re-upload does not
    (§5.14.3, item 116)."""
    table = await _table(api)
    row_id = new_id()
    seen = [(await row_manifest(api, table, row_id))[1]]
    for name, kind, data in FILES[:3]:
        assert (await upload_batch(api, table, row_id, [(name, kind, data)])).status == 201
        seen.append((await row_manifest(api, table, row_id))[1])
    assert len(set(seen)) == len(seen)
    assert (await upload_batch(api, table, row_id, FILES[:1])).status == 201
    assert (await row_manifest(api, table, row_id))[1] == seen[-1]


async def test_manifests_are_per_row(api: Api) -> None:
    """Files of one row never appear in another row's manifest."""
    table = await _table(api)
    first, second = new_id(), new_id()
    assert (await upload_batch(api, table, first, FILES[:1])).status == 201
    assert (await row_manifest(api, table, second))[0] == {"files": []}
    other = await api.request("GET", row_url(table, second, "file/a.jpg"))
    assert other.status == 404


async def test_identical_reupload_succeeds(api: Api) -> None:
    """Re-uploading identical bytes, by batch or single POST, answers 201 and changes nothing
    (item 117)."""
    table = await _table(api)
    row_id = new_id()
    assert (await upload_batch(api, table, row_id, FILES)).status == 201
    before = await row_manifest(api, table, row_id)
    assert (await upload_batch(api, table, row_id, FILES[:2])).status == 201
    single = await send(
        api,
        "POST",
        row_url(table, row_id, "file/a.jpg"),
        data=JPEG,
        headers={"Content-Type": "image/jpeg"},
        gzip_body=True,
    )
    assert single.status == 201, await single.text()
    assert await row_manifest(api, table, row_id) == before


async def test_different_bytes_are_refused(api: Api) -> None:
    """Re-uploading a name with different bytes answers 400, by batch or single POST, and the
    stored file is unchanged (item 118, D11)."""
    table = await _table(api)
    row_id = new_id()
    assert (await upload_batch(api, table, row_id, FILES[:1])).status == 201
    before = await row_manifest(api, table, row_id)
    batch = await upload_batch(api, table, row_id, [("a.jpg", "image/jpeg", b"other bytes")])
    assert batch.status == 400, await batch.text()
    assert "a.jpg" in (await batch.json())["message"]
    single = await send(
        api,
        "POST",
        row_url(table, row_id, "file/a.jpg"),
        data=b"other bytes",
        headers={"Content-Type": "image/jpeg"},
        gzip_body=True,
    )
    assert single.status == 400, await single.text()
    assert await row_manifest(api, table, row_id) == before
    _, content = await download(api, row_url(table, row_id, "file/a.jpg"))
    assert content == JPEG


async def test_batch_keeps_valid_parts_beside_a_conflict(api: Api) -> None:
    """A batch with one conflicting part answers 400 but keeps its valid new parts (quirk 8.28)."""
    table = await _table(api)
    row_id = new_id()
    assert (await upload_batch(api, table, row_id, FILES[:1])).status == 201
    mixed = [("a.jpg", "image/jpeg", b"changed"), ("new.txt", "text/plain", b"new")]
    assert (await upload_batch(api, table, row_id, mixed)).status == 400
    body, _ = await row_manifest(api, table, row_id)
    assert {e["filename"]: e["md5hash"] for e in body["files"]} == {
        "a.jpg": md5_of(JPEG),
        "new.txt": md5_of(b"new"),
    }


async def test_part_without_filename_is_400(api: Api) -> None:
    """A part whose Content-Disposition lacks a filename answers 400 (item 119)."""
    table = await _table(api)
    row_id = new_id()
    boundary = "refbad"
    body = (
        f"--{boundary}\r\nContent-Disposition: file\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    response = await send(
        api,
        "POST",
        row_url(table, row_id, "upload"),
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 400, await response.text()
    assert (await row_manifest(api, table, row_id))[0] == {"files": []}


async def test_form_data_disposition_is_accepted(api: Api) -> None:
    """A standard `form-data; name=…; filename=…` part is accepted as well (§5.14.4)."""
    table = await _table(api)
    row_id = new_id()
    boundary = "formdataboundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="x/y.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nhello\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    response = await send(
        api,
        "POST",
        row_url(table, row_id, "upload"),
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 201, await response.text()
    _, content = await download(api, row_url(table, row_id, "file/x/y.txt"))
    assert content == b"hello"


async def test_android_batch_download(api: Api) -> None:
    """Batch download with Android's body answers 200 multipart/form-data with a boundary; parsed
    as Android does, the parts carry the right names and exact bytes, in request order, unknown
    names omitted (items 120–122)."""
    table = await _table(api)
    row_id = new_id()
    assert (await upload_batch(api, table, row_id, FILES)).status == 201
    wanted = ["fotos/sub/deep/β.png", "missing.jpg", "a.jpg", "fotos/ção 1.jpg", "audio.3gpp"]
    content_type, body = await _batch_download(api, table, row_id, wanted)
    assert content_type.startswith("multipart/form-data; boundary=")
    parts = parse_like_android(content_type, body)
    expected = {name: (kind, data) for name, kind, data in FILES}
    assert [p.name for p in parts] == [n for n in wanted if n in expected]
    for part in parts:
        kind, data = expected[part.name]
        assert part.data == data
        assert f"Content-Type: {kind}" in part.header_lines
        assert any(
            line.lower().startswith("content-disposition: file") for line in part.header_lines
        )


async def test_batch_download_with_filename_only_entries(api: Api) -> None:
    """Entries that carry only `filename` (item 120) are enough for a batch download."""
    table = await _table(api)
    row_id = new_id()
    assert (await upload_batch(api, table, row_id, FILES[:2])).status == 201
    body = {"files": [{"filename": "fotos/ção 1.jpg"}, {"filename": "a.jpg"}]}
    response = await api.request("POST", row_url(table, row_id, "download"), json_body=body)
    assert response.status == 200, await response.text()
    parts = parse_like_android(response.headers["Content-Type"], await response.read())
    assert [(p.name, p.data) for p in parts] == [(n, d) for n, _, d in (FILES[1], FILES[0])]


async def test_manifest_as_attachment(api: Api) -> None:
    """`?as_attachment=true` on the row manifest adds
    `Content-Disposition: attachment; filename="manifest.json"` (§3.25)."""
    table = await _table(api)
    response = await api.request(
        "GET", row_url(table, new_id(), "manifest"), params={"as_attachment": "true"}
    )
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="manifest.json"'
    assert await response.json() == {"files": []}


async def test_no_quote_after_content_disposition(api: Api) -> None:
    """No part header after Content-Disposition contains `"`, even when the stored content type
    has quotes, so Android's last-quote rule finds the right name (item 123)."""
    table = await _table(api)
    row_id = new_id()
    quoted_type = 'text/plain; charset="utf-8"'
    files = [("notes.txt", quoted_type, b"text"), ("a.jpg", "image/jpeg", JPEG)]
    assert (await upload_batch(api, table, row_id, files)).status == 201
    content_type, body = await _batch_download(api, table, row_id, ["notes.txt", "a.jpg"])
    parts = parse_like_android(content_type, body)
    assert [(p.name, p.data) for p in parts] == [("notes.txt", b"text"), ("a.jpg", JPEG)]
    for part in parts:
        index = next(
            i
            for i, line in enumerate(part.header_lines)
            if line.lower().startswith("content-disposition:")
        )
        for line in part.header_lines[index + 1 :]:
            assert '"' not in line, part.header_lines


async def test_batch_download_of_only_unknown_files_is_empty_multipart(api: Api) -> None:
    """Naming only files the server lacks answers 200 with a multipart body of no parts."""
    table = await _table(api)
    content_type, body = await _batch_download(api, table, new_id(), ["nope.jpg"])
    assert parse_like_android(content_type, body) == []


@pytest.mark.parametrize("body", [{"files": []}, {}, {"files": None}])
async def test_batch_download_without_files_is_400(api: Api, body: dict[str, object]) -> None:
    """A download request with a missing or empty file list answers 400 (item 121)."""
    table = await _table(api)
    response = await api.request("POST", row_url(table, new_id(), "download"), json_body=body)
    assert response.status == 400, await response.text()


async def test_single_file_post_and_get(api: Api) -> None:
    """Single POST of raw gzip bytes answers 201 with Location = the file URL; GET returns the
    bytes with ETag md5, 304 on If-None-Match, Content-Disposition on as_attachment; an unknown
    file is 404 (items 124, 125)."""
    table = await _table(api)
    row_id = new_id()
    name = "fotos/ção 2.jpg"
    url = row_url(table, row_id, f"file/{url_path(name)}")
    posted = await send(
        api, "POST", url, data=JPEG, headers={"Content-Type": "image/jpeg"}, gzip_body=True
    )
    assert posted.status == 201, await posted.text()
    assert posted.headers["Location"] == url
    got, content = await download(api, url)
    assert got.status == 200
    assert content == JPEG
    assert got.headers["ETag"] == md5_of(JPEG)
    assert got.headers["Content-Type"] == "image/jpeg"
    cached, content = await download(api, url, headers={"If-None-Match": md5_of(JPEG)})
    assert cached.status == 304
    assert content == b""
    assert cached.headers["ETag"] == md5_of(JPEG)
    attached, _ = await download(api, url, params={"as_attachment": "true"})
    assert attached.headers["Content-Disposition"].startswith("attachment; filename=")
    body, _ = await row_manifest(api, table, row_id)
    assert [(e["filename"], e["downloadUrl"]) for e in body["files"]] == [(name, url)]
    missing = await api.request("GET", row_url(table, row_id, "file/missing.jpg"))
    assert missing.status == 404


async def test_sync_user_may_upload_and_download(api: Api) -> None:
    """Attachments need only the synchronize role (§3.25–3.29)."""
    table = await _table(api)
    alice = api.as_user("alice")
    row_id = new_id()
    assert (await upload_batch(alice, table, row_id, FILES[:1])).status == 201
    content_type, body = await _batch_download(alice, table, row_id, ["a.jpg"])
    assert [p.data for p in parse_like_android(content_type, body)] == [JPEG]


async def test_attachments_of_a_deleted_row_stay_listed(api: Api) -> None:
    """Deleting a row leaves its attachments listed and downloadable (item 126, §5.14.1)."""
    table = await _table(api)
    alice = api.as_user("alice")
    inserted = await alice.push(table, [row(name="Ana")], None)
    row_id = inserted["rows"][0]["id"]
    assert (await upload_batch(alice, table, row_id, FILES[:2])).status == 201
    before, _ = await row_manifest(alice, table, row_id)
    tombstone = row(row_id, inserted["rows"][0]["rowETag"], deleted=True, name="Ana")
    deleted = await alice.push(table, [tombstone], inserted["dataETag"])
    assert deleted["rows"][0]["outcome"] == "SUCCESS"
    after, _ = await row_manifest(alice, table, row_id)
    assert after == before
    _, content = await download(alice, row_url(table, row_id, "file/a.jpg"))
    assert content == JPEG


async def test_attachments_for_unknown_row_are_accepted(api: Api) -> None:
    """The server does not check that the rowId exists (§5.14.1)."""
    table = await _table(api)
    row_id = "uuid:never-pushed-" + new_id()[5:]
    assert (await upload_batch(api, table, row_id, FILES[:1])).status == 201
    body, _ = await row_manifest(api, table, row_id)
    assert [e["filename"] for e in body["files"]] == ["a.jpg"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
async def test_bare_attachments_url_is_refused(api: Api, method: str) -> None:
    """Any request to instanceFilesUri itself is 401/403, never 2xx, for admins and sync users
    (§3.30, item 127)."""
    table = await _table(api)
    for user in ("admin", "alice"):
        response = await api.as_user(user).request(method, table.resource["instanceFilesUri"])
        assert response.status in (401, 403), (user, response.status)
        assert response.headers["X-OpenDataKit-Version"] == "2.0"


async def test_wrong_schema_etag_is_412(api: Api) -> None:
    """Attachment URLs under a stale schemaETag answer 412 and store nothing (§2.10)."""
    table = await _table(api)
    stale = Table(
        {
            **table.resource,
            "instanceFilesUri": table.resource["instanceFilesUri"].replace(
                table.schema_etag, "uuid:00000000-0000-4000-8000-000000000000"
            ),
        }
    )
    row_id = new_id()
    assert (await upload_batch(api, stale, row_id, FILES[:1])).status == 412
    assert (await api.request("GET", row_url(stale, row_id, "manifest"))).status == 412
    assert (await row_manifest(api, table, row_id))[0] == {"files": []}
