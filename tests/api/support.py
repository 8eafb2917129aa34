"""Shared assertions for the black-box API tests: exact entity shapes, error bodies, snapshots.

The key sets are the complete allowed field sets of CLIENT_FLOW §3.3: the Android client's JSON
parsing is strict, so a response may carry neither more nor (here) fewer properties.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.helpers import Api, Table

TABLE_RESOURCE_LIST_KEYS = frozenset(
    {
        "tables",
        "appLevelManifestETag",
        "webSafeRefetchCursor",
        "webSafeBackwardCursor",
        "webSafeResumeCursor",
        "hasMoreResults",
        "hasPriorResults",
    }
)
TABLE_RESOURCE_KEYS = frozenset(
    {
        "tableId",
        "schemaETag",
        "dataETag",
        "selfUri",
        "definitionUri",
        "dataUri",
        "instanceFilesUri",
        "diffUri",
        "aclUri",
        "tableLevelManifestETag",
    }
)
DEFINITION_RESOURCE_KEYS = frozenset(
    {"tableId", "schemaETag", "orderedColumns", "selfUri", "tableUri"}
)
COLUMN_KEYS = frozenset({"elementKey", "elementName", "elementType", "listChildElementKeys"})
ROW_RESOURCE_LIST_KEYS = frozenset(
    {
        "rows",
        "dataETag",
        "tableUri",
        "webSafeRefetchCursor",
        "webSafeBackwardCursor",
        "webSafeResumeCursor",
        "hasMoreResults",
        "hasPriorResults",
    }
)
ROW_RESOURCE_KEYS = frozenset(
    {
        "id",
        "rowETag",
        "dataETagAtModification",
        "deleted",
        "createUser",
        "lastUpdateUser",
        "formId",
        "locale",
        "savepointType",
        "savepointTimestamp",
        "savepointCreator",
        "filterScope",
        "orderedColumns",
        "selfUri",
    }
)
ROW_OUTCOME_LIST_KEYS = frozenset({"rows", "dataETag", "tableUri"})
ROW_OUTCOME_KEYS = ROW_RESOURCE_KEYS | {"outcome"}
SCOPE_KEYS = frozenset(
    {"defaultAccess", "rowOwner", "groupReadOnly", "groupModify", "groupPrivileged"}
)
VALUE_KEYS = frozenset({"column", "value"})
PRIVILEGES_KEYS = frozenset({"user_id", "full_name", "defaultGroup", "roles"})
USER_INFO_KEYS = frozenset({"user_id", "full_name", "roles"})
CHANGE_SET_LIST_KEYS = frozenset({"changeSets", "dataETag", "sequenceValue"})
ERROR_KEYS = frozenset({"type", "message"})

UUID_ETAG = re.compile(
    r"^uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

#: The scope a row gets when it arrives without one (SYNC_PROTOCOL §4.12).
DEFAULT_SCOPE = {
    "defaultAccess": "FULL",
    "rowOwner": None,
    "groupReadOnly": None,
    "groupModify": None,
    "groupPrivileged": None,
}


def is_uuid_etag(value: object) -> bool:
    return isinstance(value, str) and UUID_ETAG.match(value) is not None


def assert_odk_headers(response: aiohttp.ClientResponse) -> None:
    """The ODK version header and the reference's CORS headers (§2.2, §9 items 1–2)."""
    assert response.headers.get("X-OpenDataKit-Version") == "2.0", response.headers
    assert response.headers.get("Access-Control-Allow-Origin") == "*", response.headers
    assert response.headers.get("Access-Control-Allow-Credentials") == "true", response.headers


async def assert_error(
    response: aiohttp.ClientResponse, status: int, error_type: str
) -> dict[str, Any]:
    """A JSON `Error` entity with exactly `type` and `message` (§4.26, §6.1)."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", (response.content_type, text)
    assert_odk_headers(response)
    body: dict[str, Any] = await response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["type"] == error_type, body
    assert body["message"] is None or isinstance(body["message"], str)
    return body


async def assert_plain_denial(response: aiohttp.ClientResponse, status: int) -> str:
    """401/403 carry the ODK header and a short text/plain body, never JSON (D2)."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "text/plain", response.content_type
    assert_odk_headers(response)
    assert text.strip(), "the denial needs a short human-readable body"
    assert not text.lstrip().startswith(("{", "[")), text
    return text


def assert_scope_shape(scope: Any) -> None:
    assert isinstance(scope, dict), scope
    assert set(scope) == SCOPE_KEYS, scope


def assert_row_resource_shape(row: dict[str, Any]) -> None:
    """RowResource: exactly the client's fields; orderedColumns items `{column, value}`."""
    assert set(row) == ROW_RESOURCE_KEYS, sorted(row)
    assert_scope_shape(row["filterScope"])
    assert isinstance(row["orderedColumns"], list)
    for item in row["orderedColumns"]:
        assert set(item) == VALUE_KEYS, item
        assert item["value"] is None or isinstance(item["value"], str), item
    columns = [item["column"] for item in row["orderedColumns"]]
    assert columns == sorted(columns), columns
    assert isinstance(row["deleted"], bool)


def assert_row_list_shape(body: dict[str, Any]) -> None:
    assert set(body) == ROW_RESOURCE_LIST_KEYS, sorted(body)
    assert isinstance(body["hasMoreResults"], bool)
    assert isinstance(body["hasPriorResults"], bool)
    for row in body["rows"]:
        assert_row_resource_shape(row)


def assert_outcome_list_shape(body: dict[str, Any]) -> None:
    assert set(body) == ROW_OUTCOME_LIST_KEYS, sorted(body)
    for outcome in body["rows"]:
        assert set(outcome) == ROW_OUTCOME_KEYS, sorted(outcome)
        assert_scope_shape(outcome["filterScope"])


def values_of(row: dict[str, Any]) -> dict[str, str | None]:
    """`orderedColumns` of a row as a mapping."""
    return {item["column"]: item["value"] for item in row["orderedColumns"]}


async def pull_all(
    api: Api, url: str, fetch_limit: int | None = None, **params: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow `webSafeResumeCursor` while `hasMoreResults`; returns (all rows, every page)."""
    query = dict(params)
    if fetch_limit is not None:
        query["fetchLimit"] = str(fetch_limit)
    rows: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    while True:
        page = await api.get_json(url, params=query)
        pages.append(page)
        rows.extend(page["rows"])
        if not page["hasMoreResults"]:
            return rows, pages
        assert page["webSafeResumeCursor"], page
        query["cursor"] = page["webSafeResumeCursor"]
        assert len(pages) < 10_000, "paging does not terminate"


async def snapshot(api: Api, table: Table) -> tuple[Any, list[tuple[Any, ...]]]:
    """What a failed request must leave untouched: the dataETag and every row's revision."""
    resource = await api.table_resource(table)
    history, _ = await pull_all(api.as_user("admin"), table.diff_uri)
    revisions = sorted((r["id"], r["rowETag"], r["deleted"]) for r in history)
    return resource["dataETag"], revisions


async def gzip_stream(data: bytes, chunk: int = 1024) -> AsyncIterator[bytes]:
    """A gzip body as an async generator: aiohttp then sends it chunked, with no length."""
    compressed = gzip.compress(data)
    for start in range(0, len(compressed), chunk):
        yield compressed[start : start + chunk]
