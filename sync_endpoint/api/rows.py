"""Rows: full pull, push, single row (§3.18–3.20); diffs and change sets (§3.21–3.23); time
window queries (§3.24). Every listing passes through the caller's row access policy (D12)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from sync_endpoint.api.auth import Need, requires
from sync_endpoint.api.common import live_table, row_policy, services
from sync_endpoint.api.params import page_request, read_json
from sync_endpoint.api.responses import json_response
from sync_endpoint.api.serialization import JsonDict, parse_row_list, row_outcome, row_resource
from sync_endpoint.api.urls import Urls, segment
from sync_endpoint.appkeys import principal_of
from sync_endpoint.core import tables as table_rules
from sync_endpoint.core.columns import TableSchema
from sync_endpoint.core.models import Page, StoredRow, TableEntry
from sync_endpoint.core.paging import encode_cursor
from sync_endpoint.errors import BadRequestError, NotFoundError


def _row_list(
    request: web.Request,
    table: TableEntry,
    data_etag: str | None,
    page: Page[StoredRow],
    rows: Iterable[StoredRow],
    query: str,
) -> JsonDict:
    urls = Urls(request)
    definition = urls.definition(table.app_id, table.table_id, table.schema_etag)
    retained = TableSchema.build(table.columns).retained
    cursor = request.query.get("cursor") or None
    return {
        "rows": [
            row_resource(row, retained, f"{definition}/rows/{segment(row.row_id)}") for row in rows
        ],
        "dataETag": data_etag,
        "tableUri": urls.table(table.app_id, table.table_id),
        "webSafeRefetchCursor": cursor,
        "webSafeBackwardCursor": (
            encode_cursor(query, page.first_key, True) if page.first_key is not None else None
        ),
        "webSafeResumeCursor": (
            encode_cursor(query, page.last_key) if page.last_key is not None else cursor
        ),
        "hasMoreResults": page.has_more,
        "hasPriorResults": cursor is not None,
    }


@requires(Need.SYNC)
async def list_rows(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/rows"""
    table = await live_table(request)
    query = f"rows|{table.pk}"
    data_etag, page = await services(request).storage.read_rows(table, page_request(request, query))
    policy = row_policy(request)
    visible = [row for row in page.items if policy.may_see(row)]
    return json_response(request, _row_list(request, table, data_etag, page, visible, query))


@requires(Need.SYNC)
async def put_rows(request: web.Request) -> web.Response:
    """PUT /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/rows"""
    table = await live_table(request)
    schema = TableSchema.build(table.columns)
    data_etag, rows = parse_row_list(await read_json(request), schema)
    outcomes, new_data_etag = await table_rules.push_rows(
        services(request).storage,
        table,
        data_etag,
        rows,
        principal_of(request).login,
        row_policy(request),
    )
    body = {
        "rows": [row_outcome(o, schema.retained) for o in outcomes],
        "dataETag": new_data_etag,
        "tableUri": Urls(request).table(table.app_id, table.table_id),
    }
    return json_response(request, body)


@requires(Need.SYNC)
async def get_row(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/rows/{rowId}"""
    table = await live_table(request)
    row_id = request.match_info["rowId"]
    row = await services(request).storage.get_row(table, row_id)
    if row is None or not row_policy(request).may_see(row):
        raise NotFoundError(f"Row not found\n{row_id}")
    urls = Urls(request)
    definition = urls.definition(table.app_id, table.table_id, table.schema_etag)
    retained = TableSchema.build(table.columns).retained
    body = row_resource(row, retained, f"{definition}/rows/{segment(row.row_id)}")
    return json_response(request, body)


@requires(Need.SYNC)
async def get_diff(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/diff"""
    table = await live_table(request)
    since = request.query.get("data_etag") or None
    query = f"diff|{table.pk}|{since or ''}"
    data_etag, page = await services(request).storage.diff(
        table, since, page_request(request, query)
    )
    policy = row_policy(request)
    if since is None:  # a full pull omits hidden rows; a diff revokes them (D12)
        rows = [row for row in page.items if policy.may_see(row)]
    else:
        rows = [policy.as_seen(row) for row in page.items]
    return json_response(request, _row_list(request, table, data_etag, page, rows, query))


@requires(Need.SYNC)
async def get_change_sets(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/diff/changeSets"""
    table = await live_table(request)
    since = request.query.get("data_etag") or None
    raw_sequence = request.query.get("sequence_value", "").strip()
    sequence: int | None = None
    if raw_sequence:
        # ASCII digits within BIGINT: the only values this server issues (never a 500).
        if not (raw_sequence.isascii() and raw_sequence.isdigit()) or len(raw_sequence) > 20:
            raise BadRequestError(f"Bad arguments: invalid sequence_value {raw_sequence!r}")
        sequence = int(raw_sequence)
        if sequence > 2**63 - 1:
            raise BadRequestError(f"Bad arguments: invalid sequence_value {raw_sequence!r}")
    ids, data_etag, fresh = await services(request).storage.change_sets(table, since, sequence)
    body = {"changeSets": ids, "dataETag": data_etag, "sequenceValue": f"{fresh:020d}"}
    return json_response(request, body)


@requires(Need.SYNC)
async def get_change_set_rows(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/diff/changeSets/{dataETag}"""
    table = await live_table(request)
    change_set = request.match_info["dataETag"]
    active_only = request.query.get("active_only", "").lower() == "true"
    query = f"changeSet|{table.pk}|{change_set}|{active_only}"
    data_etag, page = await services(request).storage.change_set_rows(
        table, change_set, active_only, page_request(request, query)
    )
    policy = row_policy(request)
    rows = [policy.as_seen(row) for row in page.items]
    return json_response(request, _row_list(request, table, data_etag, page, rows, query))


async def _query(request: web.Request, by_savepoint: bool) -> web.Response:
    table = await live_table(request)
    start = request.query.get("startTime", "").strip()
    if not start:
        raise BadRequestError("Bad arguments: startTime is required")
    end = request.query.get("endTime", "").strip() or None
    kind = "savepoint" if by_savepoint else "lastUpdate"
    query = f"query|{kind}|{table.pk}|{start}|{end or ''}"
    data_etag, page = await services(request).storage.query_revisions(
        table, by_savepoint, start, end, page_request(request, query)
    )
    policy = row_policy(request)
    rows = [policy.as_seen(row) for row in page.items]
    return json_response(request, _row_list(request, table, data_etag, page, rows, query))


@requires(Need.SYNC)
async def query_last_update_date(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/query/lastUpdateDate"""
    return await _query(request, by_savepoint=False)


@requires(Need.SYNC)
async def query_savepoint_timestamp(request: web.Request) -> web.Response:
    """GET /odktables/{appId}/tables/{tableId}/ref/{schemaETag}/query/savepointTimestamp"""
    return await _query(request, by_savepoint=True)
