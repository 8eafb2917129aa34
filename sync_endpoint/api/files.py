"""Config files, manifests, client versions and table properties (§3.2, §3.6–3.10, §3.14–3.15).

Bodies stream in and out: an upload goes straight from the socket (gzip undone once by
aiohttp) into the blob store with its md5 computed on the way; a download streams back.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import installation_id, services, table_of
from sync_endpoint.api.params import body_chunks, read_json
from sync_endpoint.api.responses import empty_response, if_none_match, json_response
from sync_endpoint.api.serialization import JsonDict
from sync_endpoint.api.urls import Urls
from sync_endpoint.appkeys import Services, principal_of
from sync_endpoint.core.files import (
    DEFAULT_CONTENT_TYPE,
    StoredFile,
    check_path,
    listed,
    manifest_etag_of,
    table_of_path,
)
from sync_endpoint.core.tables import require_table
from sync_endpoint.errors import BadRequestError, NotFoundError, NotModified

logger = logging.getLogger(__name__)

PROPERTIES_HEADER = ["_partition", "_aspect", "_key", "_type", "_value"]


async def stream_file(request: web.Request, file: StoredFile) -> web.StreamResponse:
    """200 with the bytes, or 304 when If-None-Match is the file's md5 (§2.6)."""
    if if_none_match(request) == file.md5:
        raise NotModified(file.md5)
    response = web.StreamResponse(
        headers={
            "Content-Type": file.content_type,
            "ETag": file.md5,
        }
    )
    response.content_length = file.length
    if request.query.get("as_attachment"):
        name = file.path.replace('"', "")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    await response.prepare(request)
    async for chunk in services(request).files.read(file):
        await response.write(chunk)
    await response.write_eof()
    return response


async def receive_file(
    svc: Services,
    chunks: AsyncIterator[bytes],
    headers: Mapping[str, str],
    path: str,
    limit: int,
) -> StoredFile:
    """Stream one uploaded file into the blob store, checking `Content-MD5` when sent.

    The md5 is computed while the bytes stream through; a body over the limit, cut short, or
    not matching its Content-MD5 (RFC 1864: base64 of the digest) leaves nothing stored.
    """
    content_type = headers.get("Content-Type", "").strip() or DEFAULT_CONTENT_TYPE
    file = await svc.files.write_blob(chunks, limit, content_type, path)
    claimed = headers.get("Content-MD5", "").strip()
    if claimed:
        try:
            expected = base64.b64decode(claimed, validate=True).hex()
        except ValueError:
            expected = ""
        if file.md5 != "md5:" + expected:
            await svc.files.discard(file)
            raise BadRequestError(f"Content-MD5 does not match the bytes received for {path}")
    return file


def manifest_entry(file: StoredFile, download_url: str) -> JsonDict:
    return {
        "filename": file.path,
        "contentLength": file.length,
        "contentType": file.content_type,
        "md5hash": file.md5,
        "downloadUrl": download_url,
    }


def _file_path(request: web.Request) -> str:
    return check_path(request.match_info["filePath"])


async def _require_owner(request: web.Request, path: str) -> str | None:
    """Table-level paths need their table (§2.10, quirk 8.23); returns the owning table id."""
    table_id = table_of_path(path)
    if table_id is not None:
        await require_table(services(request).storage, request.match_info["appId"], table_id)
    return table_id


async def _log_change(request: web.Request, table_id: str | None) -> None:
    installation = installation_id(request)
    if installation:
        await services(request).storage.log_interaction(
            installation, principal_of(request).login, "ChangeConfiguration", table_id, None
        )


@requires(Need.SYNC)
async def get_client_versions(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/clientVersions"""
    versions = await services(request).files.client_versions(request.match_info["appId"])
    etag = hashlib.md5(json.dumps(versions).encode()).hexdigest()
    return json_response(request, versions, etag=etag)


async def _manifest(request: web.Request, table_id: str | None) -> web.Response:
    app_id, version = request.match_info["appId"], request.match_info["odkClientVersion"]
    files = listed(await services(request).files.list_files(app_id, version, table_id))
    etag = manifest_etag_of(files)
    if if_none_match(request) == etag:
        raise NotModified(etag)
    urls = Urls(request)
    body = {"files": [manifest_entry(f, urls.file(app_id, version, f.path)) for f in files]}
    return json_response(request, body, etag=etag)


@requires(Need.SYNC)
async def get_app_manifest(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/manifest/{odkClientVersion}[/]"""
    return await _manifest(request, None)


@requires(Need.SYNC)
async def get_table_manifest(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/manifest/{odkClientVersion}/{tableId} (unknown table: empty)"""
    return await _manifest(request, request.match_info["tableId"])


@requires(Need.SYNC)
async def get_file(request: web.Request) -> web.StreamResponse:
    """GET /odktables/{appId}/files/{odkClientVersion}/{filePath}"""
    path = _file_path(request)
    await _require_owner(request, path)
    info = request.match_info
    file = await services(request).files.get_file(info["appId"], info["odkClientVersion"], path)
    if file is None:
        raise NotFoundError(f"No manifest entry found for: {path}")
    return await stream_file(request, file)


@requires(Need.ADMIN)
async def post_file(request: web.Request) -> web.Response:
    """POST /odktables/{appId}/files/{odkClientVersion}/{filePath} — 201 new, 202 replaced."""
    path = _file_path(request)
    table_id = await _require_owner(request, path)
    info = request.match_info
    svc = services(request)
    file = await receive_file(
        svc, body_chunks(request), request.headers, path, svc.settings.max_request_bytes
    )
    if file.length == 0:
        # D11: stored, never listed — Android fails every device's file sync on an empty entry.
        logger.warning("empty config file %s stored but left out of the manifest", path)
    created = await svc.files.put_file(info["appId"], info["odkClientVersion"], table_id, file)
    await _log_change(request, table_id)
    location = Urls(request).file(info["appId"], info["odkClientVersion"], path)
    return empty_response(201 if created else 202, {"Location": location})


@requires(Need.ADMIN)
async def delete_file(request: web.Request) -> web.Response:
    """DELETE /odktables/{appId}/files/{odkClientVersion}/{filePath} (idempotent)"""
    path = _file_path(request)
    table_id = await _require_owner(request, path)
    info = request.match_info
    await services(request).files.delete_file(info["appId"], info["odkClientVersion"], path)
    await _log_change(request, table_id)
    return empty_response()


# -- properties.csv as JSON ----------------------------------------------------------------


def _finite(text: str) -> float:
    """A JSON number that JSON can carry: NaN and infinities (also `1e999`) are unparsable."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _typed(kind: str, value: str | None) -> Any:
    """§3.14: the JSON value of a properties.csv entry, typed by its `_type`.

    Unparsable values are null; that includes NaN and infinities, which would otherwise make
    the whole answer invalid JSON (§2.4).
    """
    if value is None:
        return None
    if kind == "string":
        return value
    if kind == "boolean":
        return value.lower() == "true"
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return None
    if kind == "number":
        try:
            return _finite(value)
        except ValueError:
            return None
    try:
        return json.loads(value, parse_float=_finite, parse_constant=_no_constant)
    except ValueError:
        return None


def _csv_field(value: str | None) -> str:
    """RFC 4180 as the reference writes it: null unquoted and empty, "" for an empty string."""
    if value is None:
        return ""
    if value == "" or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value  # stored verbatim (quirk 8.12 recommendation)
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@requires(Need.SYNC)
async def get_properties(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/properties/{odkClientVersion}"""
    table = await table_of(request)
    svc = services(request)
    path = f"tables/{table.table_id}/properties.csv"
    file = await svc.files.get_file(table.app_id, request.match_info["odkClientVersion"], path)
    if file is None:
        raise NotFoundError(f"No manifest entry found for: {path}")
    raw = b"".join([chunk async for chunk in svc.files.read(file)])
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    if not rows:
        return json_response(request, [])
    if rows[0] != PROPERTIES_HEADER:
        raise BadRequestError("properties.csv does not start with the expected header")
    entries = []
    for record in rows[1:]:
        if not record:
            continue
        partition, aspect, key, kind, value = ([*record, "", "", "", "", ""])[:5]
        entries.append(
            {
                "partition": partition,
                "aspect": aspect,
                "key": key,
                "type": kind,
                "value": _typed(kind, value if value != "" else None),
            }
        )
    return json_response(request, entries)


@requires(Need.ADMIN)
async def put_properties(request: web.Request) -> web.Response:
    """PUT /odktables/{appId}/tables/{tableId}/properties/{odkClientVersion} — 202"""
    table = await table_of(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise BadRequestError("Error parsing JSON request: expected an array of properties")
    allowed = {"partition", "aspect", "key", "type", "value"}
    records: list[list[str | None]] = []
    for index, entry in enumerate(body):
        if not isinstance(entry, dict) or set(entry) - allowed:
            raise BadRequestError(f"Error parsing JSON request: bad property entry {index}")
        fields = [entry.get(k) for k in ("partition", "aspect", "key", "type")]
        if not all(isinstance(f, str) for f in fields):
            raise BadRequestError(f"Error parsing JSON request: property {index} needs strings")
        records.append([*fields, _as_text(entry.get("value"))])
    records.sort(key=lambda r: [x or "" for x in r])
    lines = [",".join(PROPERTIES_HEADER)] + [",".join(_csv_field(f) for f in r) for r in records]
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")

    async def one_chunk() -> AsyncIterator[bytes]:
        yield data

    svc = services(request)
    path = f"tables/{table.table_id}/properties.csv"
    file = await svc.files.write_blob(
        one_chunk(), svc.settings.max_request_bytes, "text/csv; charset=utf-8", path
    )
    await svc.files.put_file(
        table.app_id, request.match_info["odkClientVersion"], table.table_id, file
    )
    return empty_response(202)
