"""Row attachments (§3.25–3.30, CLIENT_FLOW §3.2): manifest, single files, batch multipart.

Uploads answer 201 (the only status Android accepts). Attachments are immutable (D11):
identical bytes again succeed, different bytes under the same name are a 400.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Mapping

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.multipart import parse_content_disposition

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import live_table, services
from sync_endpoint.api.files import manifest_entry, receive_file, stream_file
from sync_endpoint.api.params import body_chunks, read_json
from sync_endpoint.api.responses import empty_response, if_none_match, json_response
from sync_endpoint.api.urls import Urls, path, segment
from sync_endpoint.core.files import check_path, manifest_etag_of
from sync_endpoint.core.models import TableEntry
from sync_endpoint.errors import (
    BadRequestError,
    NotFoundError,
    NotModified,
    PermissionDenied,
    UnsupportedMediaType,
)


def _row_base(request: web.Request, table: TableEntry, row_id: str) -> str:
    definition = Urls(request).definition(table.app_id, table.table_id, table.schema_etag)
    return f"{definition}/attachments/{segment(row_id)}"


def _row_id(request: web.Request) -> str:
    row_id = request.match_info["rowId"]
    if not row_id or len(row_id) > 255:
        raise BadRequestError("Invalid RowId.")
    return row_id


@requires(Need.ADMIN)
async def refuse_bare(request: web.Request) -> web.Response:
    """ANY …/ref/{schemaETag}/attachments — exists only as a URL prefix (§3.30)."""
    raise PermissionDenied("rowId is required")


@requires(Need.SYNC)
async def get_manifest(request: web.Request) -> web.Response:
    """GET …/ref/{schemaETag}/attachments/{rowId}/manifest"""
    table = await live_table(request)
    row_id = _row_id(request)
    files = await services(request).files.list_attachments(table, row_id)
    etag = manifest_etag_of(files)
    if if_none_match(request) == etag:
        raise NotModified(etag)
    base = _row_base(request, table, row_id)
    body = {"files": [manifest_entry(f, f"{base}/file/{path(f.path)}") for f in files]}
    response = json_response(request, body, etag=etag)
    if request.query.get("as_attachment"):
        response.headers["Content-Disposition"] = 'attachment; filename="manifest.json"'
    return response


@requires(Need.SYNC)
async def get_file(request: web.Request) -> web.StreamResponse:
    """GET …/ref/{schemaETag}/attachments/{rowId}/file/{filePath}"""
    table = await live_table(request)
    row_id = _row_id(request)
    file_path = check_path(request.match_info["filePath"])
    file = await services(request).files.get_attachment(table, row_id, file_path)
    if file is None:
        raise NotFoundError(f"No file found for: {file_path}")
    return await stream_file(request, file)


@requires(Need.SYNC)
async def post_file(request: web.Request) -> web.Response:
    """POST …/ref/{schemaETag}/attachments/{rowId}/file/{filePath} — 201"""
    table = await live_table(request)
    row_id = _row_id(request)
    file_path = check_path(request.match_info["filePath"])
    svc = services(request)
    file = await receive_file(
        svc, body_chunks(request), request.headers, file_path, svc.settings.max_request_bytes
    )
    await svc.files.add_attachment(table, row_id, file)
    location = f"{_row_base(request, table, row_id)}/file/{path(file_path)}"
    return empty_response(201, {"Location": location})


_QUOTED_FILENAME = re.compile(r'(?:^|;)\s*filename\s*=\s*"((?:[^"]|"")*)"', re.IGNORECASE)


def _part_filename(header: str | None, params: Mapping[str, str]) -> str | None:
    """A part's file name exactly as sent (§5.14.4: `filename="<path>"`, `"` doubled, never
    un-escaped by either side).

    aiohttp's parser strips leading `/` and `\\` from a quoted value and un-escapes backslashes,
    which would store `/abs` as `abs` and `a\\b` as `ab`: a name the client never sent, and one
    that slips past the path rules. A quoted value is therefore taken verbatim; other forms
    (a token, RFC 5987 `filename*`) fall back to aiohttp.
    """
    if header and (match := _QUOTED_FILENAME.search(header)):
        return match.group(1)
    return params.get("filename")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """A part's bytes. aiohttp ends a part cut off by the end of the body (no closing boundary)
    like a complete one; such a part is refused here so that no truncated file is stored."""
    while chunk := await part.read_chunk(256 * 1024):
        yield chunk
    if not part.at_eof():
        raise BadRequestError("Malformed multipart body: a part ends before its boundary")


@requires(Need.SYNC)
async def upload(request: web.Request) -> web.Response:
    """POST …/ref/{schemaETag}/attachments/{rowId}/upload — multipart, parts named by filename.

    Valid parts are kept even when a later part is refused (as the reference; the client
    re-sends only what the manifest still lacks).
    """
    table = await live_table(request)
    row_id = _row_id(request)
    if request.content_type != "multipart/form-data":
        raise BadRequestError("Multipart Form of only file contents expected.")
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        # Clients never compress the batch upload (CLIENT_FLOW §1.2); its parts are read raw.
        raise UnsupportedMediaType("A compressed multipart body is not supported")
    svc = services(request)
    budget = svc.settings.max_request_bytes
    errors: list[str] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                errors.append("Multipart Form of only file contents expected.")
                continue
            header = part.headers.get(hdrs.CONTENT_DISPOSITION)
            disposition, params = parse_content_disposition(header)
            name = _part_filename(header, params) or part.filename
            if disposition is None or disposition.lower() not in ("file", "form-data") or not name:
                await part.release()
                errors.append(
                    "Multipart Form file content must specify instance-relative filename."
                )
                continue
            file_path = check_path(name)
            try:
                file = await receive_file(svc, _part_chunks(part), part.headers, file_path, budget)
                budget -= file.length
                await svc.files.add_attachment(table, row_id, file)
            except BadRequestError as exc:
                errors.append(exc.message)
    except ValueError as exc:  # malformed multipart framing
        raise BadRequestError(f"Malformed multipart body: {exc}") from None
    if errors:
        raise BadRequestError(errors[0])
    return empty_response(201, {"Location": f"{_row_base(request, table, row_id)}/manifest"})


@requires(Need.SYNC)
async def download(request: web.Request) -> web.StreamResponse:
    """POST …/ref/{schemaETag}/attachments/{rowId}/download — multipart/form-data response.

    Android reads each part's name between `filename="` and the LAST `"` of the part headers,
    so no header after Content-Disposition may contain a double quote.
    """
    table = await live_table(request)
    row_id = _row_id(request)
    body = await read_json(request)
    files = body.get("files") if isinstance(body, dict) else None
    allowed = {"filename", "contentLength", "contentType", "md5hash", "downloadUrl"}
    if not isinstance(files, list) or not files:
        raise BadRequestError("Supplied manifest is missing or specifies no files (empty).")
    wanted: list[str] = []
    for entry in files:
        if (
            not isinstance(entry, dict)
            or set(entry) - allowed
            or not isinstance(entry.get("filename"), str)
        ):
            raise BadRequestError("Error parsing JSON request: bad manifest entry")
        wanted.append(entry["filename"])
    svc = services(request)
    found = []
    for name in wanted:
        file = await svc.files.get_attachment(table, row_id, name)
        if file is not None:
            found.append(file)
    boundary = f"boundary-{uuid.uuid4()}"
    heads = []
    for file in found:
        content_type = file.content_type.replace('"', "")
        filename = file.path.replace('"', '""')
        heads.append(
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: file; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
        )
    tail = f"--{boundary}--\r\n".encode()
    response = web.StreamResponse(
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    response.content_length = sum(
        len(h) + f.length + 2 for h, f in zip(heads, found, strict=True)
    ) + len(tail)
    await response.prepare(request)
    for head, file in zip(heads, found, strict=True):
        await response.write(head)
        async for chunk in svc.files.read(file):
            await response.write(chunk)
        await response.write(b"\r\n")
    await response.write(tail)
    await response.write_eof()
    return response
