"""Hostile file paths never reach storage (SYNC_PROTOCOL §3.8–3.10, §3.27–3.29; core/files.py
path rules). Runs with the filesystem blob store, the one where a path could do harm.

Each bad path is sent byte for byte on a raw connection (an HTTP client would normalise
`..` away before sending). The answer must be a 4xx — 400 where the path reaches the handler,
404 where the router normalised it away — never 2xx or 5xx, and nothing may be stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.files.support import (
    android_multipart,
    download,
    get_manifest,
    md5_of,
    raw_request,
    row_manifest,
    send,
    tree,
    upload_batch,
    upload_ok,
)
from tests.helpers import Api, Table

ROW_ID = "uuid:5a1e0000-0000-4000-8000-000000000001"

#: (id, path as it appears in the URL, raw bytes)
URL_PATHS = [
    ("dotdot", b".."),
    ("dot", b"."),
    ("inner-dotdot", b"a/../b"),
    ("inner-dot", b"a/./b"),
    ("encoded-dotdot", b"%2e%2e/x"),
    ("encoded-dotdot-upper", b"%2E%2E/%2E%2E/x"),
    ("encoded-escape", b"a/%2e%2e/%2e%2e/etc/passwd"),
    ("encoded-slash-escape", b"..%2f..%2fetc%2fpasswd"),
    ("absolute", b"/abs"),
    ("absolute-etc", b"/etc/passwd"),
    ("backslash-raw", b"a\\b"),
    ("backslash-encoded", b"a%5Cb"),
    ("backslash-dotdot", b"..%5C..%5Cx"),
    ("nul", b"a%00b"),
    ("newline", b"a%0Ab"),
    ("empty-segment", b"a//b"),
    ("trailing-slash", b"a/"),
    ("long-segment", b"s" * 300),
    ("long-path", b"/".join([b"d" * 9] * 201)),
]

#: Literal file names of multipart parts (no percent-decoding happens there).
PART_NAMES = [
    "..",
    ".",
    "a/../b",
    "../x",
    "a/../../etc/passwd",
    "/abs",
    "/etc/passwd",
    "a\\b",
    "..\\..\\x",
    "a\tb",
    "a//b",
    "a/",
    "s" * 300,
    "/".join(["d" * 9] * 201),
]

#: Unusual names that are nevertheless safe: the rules must not refuse them.
GOOD_NAMES = [
    "..a/b..",
    ".hidden",
    "a/.b/...c",
    "ção/файл 1.txt",
    "50% off.txt",
    "semi;colon,comma&amp=1.txt",
    "q?x=1#f",
    "s" * 255,
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"blob_store": "filesystem"}


def _stable(root: Path) -> dict[str, bytes]:
    """Files under the test's folder, minus the SQLite database (which changes on any read)."""
    return {k: v for k, v in tree(root).items() if not k.startswith("sync.sqlite3")}


async def _state(api: Api, table: Table) -> tuple[Any, ...]:
    return (
        await get_manifest(api),
        await get_manifest(api, table.table_id),
        await row_manifest(api, table, ROW_ID),
        await api.get_json(api.app_url("/clientVersions")),
    )


def _target(url: str) -> bytes:
    return urlsplit(url).path.encode()


#: Paths the router itself does not match (its `.+` stops at a newline): 404, never a handler.
ROUTER_404 = {"newline"}


@pytest.mark.parametrize(("bad", "raw"), URL_PATHS, ids=[i for i, _ in URL_PATHS])
async def test_bad_url_paths_are_refused(api: Api, tmp_path: Path, bad: str, raw: bytes) -> None:
    """Config file GET/POST/DELETE and attachment GET/POST with a hostile path answer 4xx (400
    when the path reaches the handler) and write nothing anywhere."""
    table = await api.create_table("census")
    await upload_ok(api, "assets/keep.txt", b"keep")
    before, files_before = await _state(api, table), _stable(tmp_path)
    config = b"/odktables/default/files/2/" + raw
    attachment = _target(table.resource["instanceFilesUri"]) + f"/{ROW_ID}/file/".encode() + raw
    statuses = {
        "config GET": await raw_request(api, "GET", config),
        "config POST": await raw_request(api, "POST", config, body=b"payload"),
        "config DELETE": await raw_request(api, "DELETE", config),
        "attachment GET": await raw_request(api, "GET", attachment),
        "attachment POST": await raw_request(api, "POST", attachment, body=b"payload"),
    }
    expected = {400, 404} if bad in ROUTER_404 else {400}
    for what, status in statuses.items():
        assert 400 <= status < 500, f"{what}: {status}"
        assert status in expected, f"{what}: {status}"
    assert await _state(api, table) == before
    assert _stable(tmp_path) == files_before


@pytest.mark.parametrize("name", PART_NAMES, ids=[n[:20] for n in PART_NAMES])
async def test_bad_multipart_names_are_refused(api: Api, tmp_path: Path, name: str) -> None:
    """A batch part whose filename is hostile — taken verbatim, not as aiohttp would rewrite it
    (`/abs` → `abs`, `a\\b` → `ab`) — answers 400 and stores nothing."""
    table = await api.create_table("census")
    before, files_before = await _state(api, table), _stable(tmp_path)
    body, content_type = android_multipart([(name, "image/jpeg", b"payload")])
    response = await send(
        api,
        "POST",
        f"{table.resource['instanceFilesUri']}/{ROW_ID}/upload",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert response.status == 400, (response.status, await response.text())
    assert await _state(api, table) == before
    assert _stable(tmp_path) == files_before


@pytest.mark.parametrize("name", GOOD_NAMES, ids=[n[:20] for n in GOOD_NAMES])
async def test_unusual_safe_names_round_trip(api: Api, name: str) -> None:
    """Dots inside names, non-ASCII, `%`, `?`, `#` and a 255-character segment are accepted as
    config files and attachments, and come back from their downloadUrl under the same name."""
    table = await api.create_table("census")
    await upload_ok(api, f"assets/{name}", b"config")
    (entry,) = (await get_manifest(api))[0]["files"]
    assert entry["filename"] == f"assets/{name}"
    got, content = await download(api, entry["downloadUrl"])
    assert (got.status, content) == (200, b"config")
    uploaded = await upload_batch(api, table, ROW_ID, [(name, "text/plain", b"attachment")])
    assert uploaded.status == 201, await uploaded.text()
    (row_entry,) = (await row_manifest(api, table, ROW_ID))[0]["files"]
    assert row_entry["filename"] == name
    got, content = await download(api, row_entry["downloadUrl"])
    assert (got.status, content) == (200, b"attachment")


async def test_filesystem_store_writes_only_inside_its_directory(api: Api, tmp_path: Path) -> None:
    """A valid upload on the filesystem store adds files only under the blob directory, named by
    content, never by the client's path."""
    table = await api.create_table("census")
    before = _stable(tmp_path)
    await upload_ok(api, "assets/sub/file.txt", b"config bytes")
    body, content_type = android_multipart([("pics/a.jpg", "image/jpeg", b"attachment bytes")])
    response = await send(
        api,
        "POST",
        f"{table.resource['instanceFilesUri']}/{ROW_ID}/upload",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert response.status == 201
    added = {
        k: v
        for k, v in _stable(tmp_path).items()
        if before.get(k) != v and k != "data/blobs/.lock"  # the store's own lock file
    }
    assert sorted(added.values()) == [b"attachment bytes", b"config bytes"]
    for name in added:
        assert name.startswith("data/blobs/"), name
        assert "file.txt" not in name
        assert "a.jpg" not in name
    assert md5_of(b"config bytes") in str((await get_manifest(api))[0])
