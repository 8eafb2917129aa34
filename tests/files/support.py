"""Helpers for the file tests: uploads, manifests, the multipart formats of Android, raw HTTP.

The multipart builder and parser reproduce what ODK-X Services does on the wire
(CLIENT_FLOW §3.2): parts `Content-Disposition: file;filename="…"` on upload, and on download a
file name taken between the first `filename="` and the last `"` of each part's header block.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from sqlalchemy import func, select

from sync_endpoint.appkeys import services_key
from sync_endpoint.storage.schema import sync_blob_chunks, sync_blobs
from tests.helpers import ODK, Api, Table

#: The complete key set of an OdkTablesFileManifestEntry (§4.21).
ENTRY_KEYS = frozenset({"filename", "contentLength", "contentType", "md5hash", "downloadUrl"})
#: The manifest ETag of an empty file list (§5.13.4).
EMPTY_MANIFEST_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
OCTET_STREAM = "application/octet-stream"


async def send(
    api: Api,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    gzip_body: bool = False,
) -> aiohttp.ClientResponse:
    """Like `Api.request` for bodies of any size (a BytesIO payload, so aiohttp does not warn)."""
    send_headers = {**ODK, **api.auth_headers(), **(headers or {})}
    body = data
    if gzip_body and body is not None:
        body = gzip.compress(body)
        send_headers["Content-Encoding"] = "gzip"
    response: aiohttp.ClientResponse = await api.client.request(
        method, api.path(url), data=None if body is None else io.BytesIO(body), headers=send_headers
    )
    await response.read()
    return response


def md5_of(data: bytes) -> str:
    """The protocol's content hash: `md5:` + 32 lower-case hex digits (§5.13.3)."""
    return "md5:" + hashlib.md5(data).hexdigest()


def reference_manifest_etag(md5_by_name: dict[str, str]) -> str:
    """§5.13.4, written independently of the server: md5 over the hashes in filename order."""
    digest = hashlib.md5()
    for name in sorted(md5_by_name):
        digest.update(md5_by_name[name].encode("utf-8"))
    return format(int(digest.hexdigest(), 16), "x")


def url_path(value: str) -> str:
    """A file path as it appears, percent-encoded, in server URLs (':' and '/' stay literal)."""
    return quote(value, safe="/!$&'()*+,;=:@-._~")


def file_url(api: Api, path: str, version: str = "2") -> str:
    return api.app_url(f"/files/{version}/{url_path(path)}")


def manifest_url(api: Api, table_id: str | None = None, version: str = "2") -> str:
    return api.app_url(f"/manifest/{version}" + (f"/{table_id}" if table_id else "/"))


async def upload(
    api: Api,
    path: str,
    data: bytes,
    *,
    version: str = "2",
    content_type: str = OCTET_STREAM,
    gzip_body: bool = True,
) -> aiohttp.ClientResponse:
    """POST a config file as Android does: gzip body, the file's media type."""
    return await send(
        api,
        "POST",
        file_url(api, path, version),
        data=data,
        headers={"Content-Type": content_type},
        gzip_body=gzip_body,
    )


async def upload_ok(api: Api, path: str, data: bytes, **kwargs: Any) -> aiohttp.ClientResponse:
    response = await upload(api, path, data, **kwargs)
    assert response.status in (201, 202), (response.status, await response.text())
    return response


async def get_manifest(
    api: Api, table_id: str | None = None, version: str = "2"
) -> tuple[dict[str, Any], str]:
    """A manifest (app level, or a table's) and its ETag header."""
    response = await api.request("GET", manifest_url(api, table_id, version))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"files"}, body
    for entry in body["files"]:
        assert set(entry) == ENTRY_KEYS, entry
    return body, response.headers["ETag"]


async def listed_names(api: Api, table_id: str | None = None, version: str = "2") -> list[str]:
    body, _ = await get_manifest(api, table_id, version)
    return [entry["filename"] for entry in body["files"]]


async def download(api: Api, url: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
    response = await api.request("GET", url, **kwargs)
    return response, await response.read()


async def gzip_chunks(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A gzip body as an async generator: aiohttp sends it chunked, without Content-Length."""
    compressed = gzip.compress(data)
    for start in range(0, len(compressed), chunk):
        yield compressed[start : start + chunk]


# -- row attachments -----------------------------------------------------------------------


def row_url(table: Table, row_id: str, suffix: str) -> str:
    """`instanceFilesUri/{rowId}/{suffix}`, built the way Android appends to the URI."""
    return f"{table.resource['instanceFilesUri']}/{row_id}/{suffix}"


def android_multipart(files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A batch upload body exactly as Android's httpmime writes it; returns (body, Content-Type).

    `files` holds (relative path, media type, bytes); the path is written as UTF-8 with any `"`
    doubled, and the disposition is `file` with no `name` parameter.
    """
    boundary = f"ref{uuid.uuid4()}"
    body = bytearray()
    for name, content_type, data in files:
        quoted = name.replace('"', '""')
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: file;filename="{quoted}"\r\n'.encode()
        body += f"Content-Type: {content_type}\r\n".encode()
        body += b"Content-Transfer-Encoding: binary\r\n\r\n"
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


async def upload_batch(
    api: Api, table: Table, row_id: str, files: list[tuple[str, str, bytes]]
) -> aiohttp.ClientResponse:
    body, content_type = android_multipart(files)
    return await send(
        api,
        "POST",
        row_url(table, row_id, "upload"),
        data=body,
        headers={"Content-Type": content_type, "Content-Length": str(len(body))},
    )


async def row_manifest(api: Api, table: Table, row_id: str) -> tuple[dict[str, Any], str]:
    response = await api.request("GET", row_url(table, row_id, "manifest"))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"files"}, body
    for entry in body["files"]:
        assert set(entry) == ENTRY_KEYS, entry
    return body, response.headers["ETag"]


def download_request(names: list[str]) -> dict[str, Any]:
    """The batch-download body Android sends: only `filename`, every other property null."""
    return {
        "files": [
            {
                "filename": name,
                "contentLength": None,
                "contentType": None,
                "md5hash": None,
                "downloadUrl": None,
            }
            for name in names
        ]
    }


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    header_lines: list[str]


def parse_like_android(content_type: str, body: bytes) -> list[Part]:
    """Split a batch-download response the way ODK-X Services does.

    The boundary comes from the `boundary` parameter of Content-Type; each part's file name is
    the text between the first `filename="` and the LAST `"` of its header block (not
    un-escaped). Framing is strict RFC 2046 with CRLF.
    """
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p.strip())
    boundary = params["boundary"].strip('"')
    delimiter = b"--" + boundary.encode("ascii")
    assert body.startswith(delimiter), body[:200]
    parts: list[Part] = []
    position = len(delimiter)
    while body[position : position + 2] != b"--":
        assert body[position : position + 2] == b"\r\n", body[position : position + 20]
        head_end = body.index(b"\r\n\r\n", position + 2)
        head = body[position + 2 : head_end].decode("utf-8")
        data_end = body.index(b"\r\n" + delimiter, head_end + 4)
        start = head.index('filename="') + len('filename="')
        parts.append(
            Part(head[start : head.rindex('"')], body[head_end + 4 : data_end], head.split("\r\n"))
        )
        position = data_end + 2 + len(delimiter)
    assert body[position:].strip(b"\r\n") == b"--", body[position:]
    return parts


async def blob_counts(api: Api) -> tuple[int, int]:
    """(blobs, blob chunks) held by the database blob store: orphans would show up here."""
    app = cast(Any, api.client.server).app
    files = cast(Any, app[services_key].files)
    async with files.db.snapshot() as conn:
        blobs = (await conn.execute(select(func.count()).select_from(sync_blobs))).scalar_one()
        chunks = (
            await conn.execute(select(func.count()).select_from(sync_blob_chunks))
        ).scalar_one()
    return int(blobs), int(chunks)


# -- raw HTTP and the filesystem -------------------------------------------------------------


async def raw_request(
    api: Api,
    method: str,
    target: bytes,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> int:
    """Send a request line byte for byte (no client-side URL normalisation); returns the status."""
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [
            f"Host: {server.host}:{server.port}",
            "Connection: close",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in {**ODK, **api.auth_headers(), **(headers or {})}.items()),
        ]
        writer.write(method.encode() + b" " + target + b" HTTP/1.1\r\n")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1."), status_line
    return int(status_line.split()[1])


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (relative path → bytes), for before/after comparisons."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
