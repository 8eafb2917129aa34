"""Conversion between domain values and database records."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sync_endpoint.core.models import Access, Column, FilterScope, StoredRow, TableEntry


def columns_to_json(columns: Sequence[Column]) -> str:
    return json.dumps(
        [
            [c.element_key, c.element_name, c.element_type, c.list_child_element_keys]
            for c in columns
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def columns_from_json(raw: str) -> tuple[Column, ...]:
    return tuple(Column(*item) for item in json.loads(raw))


def table_from_record(record: Mapping[Any, Any]) -> TableEntry:
    return TableEntry(
        pk=record["pk"],
        app_id=record["app_id"],
        table_id=record["table_id"],
        schema_etag=record["schema_etag"],
        data_etag=record["data_etag"],
        columns=columns_from_json(record["columns_json"]),
    )


def row_to_record(row: StoredRow) -> dict[str, Any]:
    return {
        "row_etag": row.row_etag,
        "data_etag_at_modification": row.data_etag_at_modification,
        "deleted": row.deleted,
        "create_user": row.create_user,
        "last_update_user": row.last_update_user,
        "form_id": row.form_id,
        "locale": row.locale,
        "savepoint_type": row.savepoint_type,
        "savepoint_timestamp": row.savepoint_timestamp,
        "savepoint_creator": row.savepoint_creator,
        "default_access": row.scope.default_access.value,
        "row_owner": row.scope.row_owner,
        "group_read_only": row.scope.group_read_only,
        "group_modify": row.scope.group_modify,
        "group_privileged": row.scope.group_privileged,
        "values_json": json.dumps(dict(row.values), separators=(",", ":"), ensure_ascii=False),
    }


def row_from_record(record: Mapping[Any, Any]) -> StoredRow:
    return StoredRow(
        row_id=record["row_id"],
        row_etag=record["row_etag"],
        data_etag_at_modification=record["data_etag_at_modification"],
        deleted=bool(record["deleted"]),
        create_user=record["create_user"],
        last_update_user=record["last_update_user"],
        form_id=record["form_id"],
        locale=record["locale"],
        savepoint_type=record["savepoint_type"],
        savepoint_timestamp=record["savepoint_timestamp"],
        savepoint_creator=record["savepoint_creator"],
        scope=FilterScope(
            default_access=Access(record["default_access"]),
            row_owner=record["row_owner"],
            group_read_only=record["group_read_only"],
            group_modify=record["group_modify"],
            group_privileged=record["group_privileged"],
        ),
        values=json.loads(record["values_json"]),
    )
