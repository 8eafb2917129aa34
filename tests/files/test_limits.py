"""Size limits and incomplete bodies (SYNC_PROTOCOL §2.5, D10): the decoded body of an upload is
limited (413 naming the limit), gzip bombs are stopped, and a body that never completes leaves no
file behind — in the manifests or in blob storage."""

from __future__ import annotations

import asyncio
import gzip
import random
from typing import Any

import pytest

from tests.files.support import (
    android_multipart,
    blob_counts,
    file_url,
    get_manifest,
    md5_of,
    row_manifest,
    row_url,
    send,
    upload,
    upload_batch,
)
from tests.helpers import ODK, Api, Table, new_id

LIMIT = 1_000_000
ROW_ID = "uuid:11111111-2222-4333-8444-555555555555"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_request_bytes": LIMIT}


def _data(size: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(size)


async def _state(api: Api, table: Table) -> tuple[Any, ...]:
    return (
        await get_manifest(api),
        await row_manifest(api, table, ROW_ID),
        await blob_counts(api),
    )


async def _settled_state(api: Api, table: Table, expected: tuple[Any, ...]) -> tuple[Any, ...]:
    """The state once the server has finished with an aborted request (it may lag a little)."""
    state = await _state(api, table)
    for _ in range(50):
        if state == expected:
            break
        await asyncio.sleep(0.1)
        state = await _state(api, table)
    return state


async def _assert_413(response: Any) -> None:
    text = await response.text()
    assert response.status == 413, text
    assert str(LIMIT) in text, text
    assert response.headers["X-OpenDataKit-Version"] == "2.0"


async def test_upload_just_under_the_limit_succeeds(api: Api) -> None:
    """A config file, a single attachment and a batch just under the limit are stored whole."""
    table = await api.create_table("census")
    data = _data(LIMIT - 1)
    response = await upload(api, "assets/big.bin", data)
    assert response.status == 201, await response.text()
    assert (await get_manifest(api))[0]["files"][0]["md5hash"] == md5_of(data)
    single = await send(
        api, "POST", row_url(table, ROW_ID, "file/big.bin"), data=data, gzip_body=True
    )
    assert single.status == 201, await single.text()
    halves = [("a.bin", "application/octet-stream", data[: LIMIT // 2])]
    halves.append(("b.bin", "application/octet-stream", data[LIMIT // 2 : LIMIT - 100]))
    batch = await upload_batch(api, table, ROW_ID, halves)
    assert batch.status == 201, await batch.text()
    body, _ = await row_manifest(api, table, ROW_ID)
    assert {e["filename"]: e["contentLength"] for e in body["files"]} == {
        "a.bin": LIMIT // 2,
        "b.bin": LIMIT - 100 - LIMIT // 2,
        "big.bin": LIMIT - 1,
    }


async def test_over_the_limit_is_413_and_nothing_stored(api: Api) -> None:
    """A config file, a single attachment and a batch one byte over the limit answer 413 naming
    the limit, and store nothing: no manifest entry, no blob (D10)."""
    table = await api.create_table("census")
    before = await _state(api, table)
    data = _data(LIMIT + 1)
    await _assert_413(await upload(api, "assets/big.bin", data))
    await _assert_413(await upload(api, "assets/plain.bin", data, gzip_body=False))
    await _assert_413(
        await send(api, "POST", row_url(table, ROW_ID, "file/big.bin"), data=data, gzip_body=True)
    )
    halves = [("a.bin", "application/octet-stream", data[: LIMIT // 2])]
    halves.append(("b.bin", "application/octet-stream", data[LIMIT // 2 :]))
    batch = await upload_batch(api, table, ROW_ID, halves)
    assert batch.status == 413, await batch.text()
    after = await _state(api, table)
    # The batch keeps its first, complete part (quirk 8.28); nothing else is stored.
    assert after[0] == before[0]
    assert [e["filename"] for e in after[1][0]["files"]] == ["a.bin"]
    assert (await api.request("GET", file_url(api, "assets/big.bin"))).status == 404
    assert (await api.request("GET", row_url(table, ROW_ID, "file/big.bin"))).status == 404
    assert (await api.request("GET", row_url(table, ROW_ID, "file/b.bin"))).status == 404


async def test_gzip_bomb_is_413(api: Api) -> None:
    """50 MB of zeros gzip-compressed (about 50 kB on the wire) answer 413 on config and
    attachment uploads, and nothing is stored (D10)."""
    table = await api.create_table("census")
    before = await _state(api, table)
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
    for url in (file_url(api, "assets/bomb.bin"), row_url(table, ROW_ID, "file/bomb.bin")):
        response = await send(api, "POST", url, data=bomb, headers=headers)
        await _assert_413(response)
    assert await _state(api, table) == before


async def test_truncated_multipart_body_stores_nothing(api: Api) -> None:
    """A batch whose body ends in the middle of a part (no closing boundary) is refused with a
    4xx and leaves no partial file (CLIENT_FLOW §3.2)."""
    table = await api.create_table("census")
    before = await _state(api, table)
    body, content_type = android_multipart([("cut.jpg", "image/jpeg", _data(200_000))])
    cut = body[: len(body) // 2]
    response = await send(
        api,
        "POST",
        row_url(table, ROW_ID, "upload"),
        data=cut,
        headers={"Content-Type": content_type},
    )
    assert 400 <= response.status < 500, response.status
    assert await _state(api, table) == before


async def test_truncated_second_part_keeps_only_the_complete_part(api: Api) -> None:
    """With a complete first part and a cut second part, the first may be kept (quirk 8.28) but
    the cut one is never stored."""
    table = await api.create_table("census")
    first, second = _data(1000, 1), _data(200_000, 2)
    body, content_type = android_multipart(
        [("whole.jpg", "image/jpeg", first), ("cut.jpg", "image/jpeg", second)]
    )
    cut = body[: len(body) - 100_000]
    response = await send(
        api,
        "POST",
        row_url(table, ROW_ID, "upload"),
        data=cut,
        headers={"Content-Type": content_type},
    )
    assert 400 <= response.status < 500, response.status
    listed, _ = await row_manifest(api, table, ROW_ID)
    assert [e["filename"] for e in listed["files"]] in ([], ["whole.jpg"])
    for entry in listed["files"]:
        assert entry["md5hash"] == md5_of(first)


async def _abort_mid_body(api: Api, target: str, headers: dict[str, str], sent: bytes) -> None:
    """Promise a longer body, send part of it, and drop the connection (a device losing signal)."""
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = {
        "Host": f"{server.host}:{server.port}",
        **ODK,
        **api.auth_headers(),
        **headers,
        "Content-Length": str(len(sent) * 3),
    }
    writer.write(f"POST {target} HTTP/1.1\r\n".encode())
    writer.write("".join(f"{k}: {v}\r\n" for k, v in head.items()).encode() + b"\r\n")
    writer.write(sent)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()
    del reader


async def test_connection_lost_mid_upload_stores_nothing(api: Api) -> None:
    """Config, single and batch uploads whose connection drops mid-body leave no file and no
    orphan blob behind."""
    table = await api.create_table("census")
    before = await _state(api, table)
    data = _data(300_000)
    await _abort_mid_body(
        api, file_url(api, "assets/lost.bin"), {"Content-Type": "application/octet-stream"}, data
    )
    single = api.path(row_url(table, ROW_ID, "file/lost.bin"))
    await _abort_mid_body(api, single, {"Content-Type": "image/jpeg"}, data)
    body, content_type = android_multipart([("lost.jpg", "image/jpeg", data)])
    batch = api.path(row_url(table, ROW_ID, "upload"))
    await _abort_mid_body(api, batch, {"Content-Type": content_type}, body[: len(body) // 2])
    assert await _settled_state(api, table, before) == before


@pytest.mark.parametrize(
    "corrupt",
    [b"this is not gzip at all", gzip.compress(b"x" * 50_000)[:-8] + b"\0" * 8],
    ids=["not-gzip", "bad-crc"],
)
async def test_corrupt_gzip_upload_is_400(api: Api, corrupt: bytes) -> None:
    """A config or single-attachment body that claims gzip but does not decode (not gzip, or a
    wrong CRC) is a 400 BAD_REQUEST, never a 500, nothing is stored, and the client's next
    requests still work (D9, D10)."""
    table = await api.create_table("census")
    before = await _state(api, table)
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
    for url in (file_url(api, "assets/corrupt.bin"), row_url(table, ROW_ID, "file/corrupt.bin")):
        response = await send(api, "POST", url, data=corrupt, headers=headers)
        assert response.status == 400, (url, response.status, await response.text())
        assert (await response.json())["type"] == "BAD_REQUEST"
    assert await _state(api, table) == before


async def test_compressed_batch_upload_is_refused(api: Api) -> None:
    """A gzip-encoded multipart batch (Android never compresses it, CLIENT_FLOW §1.2) is refused
    with a 4xx, never a 5xx, and stores nothing."""
    table = await api.create_table("census")
    before = await _state(api, table)
    body, content_type = android_multipart([("a.jpg", "image/jpeg", _data(1000))])
    for data in (gzip.compress(body), b"this is not gzip at all"):
        response = await send(
            api,
            "POST",
            row_url(table, ROW_ID, "upload"),
            data=data,
            headers={"Content-Encoding": "gzip", "Content-Type": content_type},
        )
        assert response.status in (400, 415), (response.status, await response.text())
    assert await _state(api, table) == before


async def test_truncated_gzip_body_stores_nothing(api: Api) -> None:
    """A gzip body cut before its end (no trailer) is an incomplete upload: 4xx, nothing stored,
    never a shorter file accepted as complete (§2.5, D10)."""
    table = await api.create_table("census")
    before = await _state(api, table)
    data = _data(200_000)
    cut = gzip.compress(data)[:100_000]
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
    for url in (file_url(api, "assets/cut.bin"), row_url(table, new_id(), "file/cut.bin")):
        response = await send(api, "POST", url, data=cut, headers=headers)
        assert 400 <= response.status < 500, (url, response.status)
    assert await _state(api, table) == before
