"""Optional `Content-MD5` on uploads (RFC 1864): checked while streaming; a mismatch stores
nothing."""

from __future__ import annotations

import base64
import hashlib

from tests.files.support import (
    android_multipart,
    blob_counts,
    file_url,
    listed_names,
    row_manifest,
    row_url,
    send,
)
from tests.helpers import Api

ROW_ID = "uuid:0e9d5c1a-3b7f-4a52-8c1e-2d6f9b0a4c33"


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


async def test_matching_content_md5_is_accepted(api: Api) -> None:
    """A config upload whose Content-MD5 matches the decoded bytes is stored (201)."""
    data = b"verified bytes"
    response = await send(
        api, "POST", file_url(api, "assets/ok.txt"), data=data, gzip_body=True,
        headers={"Content-Type": "text/plain", "Content-MD5": content_md5(data)},
    )  # fmt: skip
    assert response.status == 201, await response.text()
    assert "assets/ok.txt" in await listed_names(api)


async def test_mismatching_content_md5_stores_nothing(api: Api) -> None:
    """A config upload, a single attachment and a batch part whose bytes do not match their
    Content-MD5 get 400 and leave no file, no manifest entry and no blob behind."""
    table = await api.create_table("census")
    before = await blob_counts(api)
    wrong = content_md5(b"something else")
    response = await send(
        api, "POST", file_url(api, "assets/bad.txt"), data=b"payload",
        headers={"Content-Type": "text/plain", "Content-MD5": wrong},
    )  # fmt: skip
    assert response.status == 400
    assert (await response.json())["type"] == "BAD_REQUEST"
    assert "assets/bad.txt" not in await listed_names(api)
    single = await send(
        api, "POST", row_url(table, ROW_ID, "file/a.jpg"), data=b"jpeg",
        headers={"Content-Type": "image/jpeg", "Content-MD5": wrong},
    )  # fmt: skip
    assert single.status == 400
    body, content_type = android_multipart([("b.jpg", "image/jpeg", b"jpeg")])
    body = body.replace(
        b"Content-Type: image/jpeg\r\n",
        f"Content-Type: image/jpeg\r\nContent-MD5: {wrong}\r\n".encode(),
    )
    batch = await send(
        api, "POST", row_url(table, ROW_ID, "upload"), data=body,
        headers={"Content-Type": content_type},
    )  # fmt: skip
    assert batch.status == 400
    manifest, _ = await row_manifest(api, table, ROW_ID)
    assert manifest["files"] == []
    assert await blob_counts(api) == before
