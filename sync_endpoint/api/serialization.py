"""ODK-X JSON entities ↔ domain values; the only place wire field names appear.

Parsing is strict (D9): unknown properties, wrong types and bad enum names are 400s. Output
carries exactly the properties of the client's entity classes (CLIENT_FLOW §3.3), with nulls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sync_endpoint.core.columns import MAX_ID_LENGTH, TableSchema, normalise_values
from sync_endpoint.core.models import (
    Access,
    Column,
    FilterScope,
    IncomingRow,
    Outcome,
    Principal,
    RowOutcome,
    StoredRow,
    TableAcl,
    TableEntry,
    UserInfo,
)
from sync_endpoint.errors import BadRequestError

JsonDict = dict[str, Any]


def loads(body: bytes) -> Any:
    """Decode a UTF-8 JSON body; any failure is a 400, never a 500."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("Error parsing JSON request: body is not UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise BadRequestError(f"Error parsing JSON request: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _object(value: Any, where: str, allowed: frozenset[str]) -> JsonDict:
    if not isinstance(value, dict):
        raise BadRequestError(f"Error parsing JSON request: {where} must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BadRequestError(
            f"Error parsing JSON request: unknown property {unknown[0]!r} in {where}"
        )
    return value


def _string(
    obj: JsonDict, key: str, where: str, required: bool = False, *, allow_nul: bool = False
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadRequestError(f"Error parsing JSON request: {where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"Error parsing JSON request: {where}.{key} must be a string")
    if not allow_nul and "\x00" in value:
        # PostgreSQL text cannot hold NUL; only row values (stored as JSON text) may carry it.
        raise BadRequestError(f"Error parsing JSON request: {where}.{key} contains NUL")
    return value


def _required(obj: JsonDict, key: str, where: str) -> str:
    value = _string(obj, key, where, required=True)
    assert value is not None
    return value


def _bool(obj: JsonDict, key: str, where: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequestError(f"Error parsing JSON request: {where}.{key} must be a boolean")
    return value


def _list(obj: JsonDict, key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequestError(f"Error parsing JSON request: {where}.{key} must be an array")
    return value


# -- table definitions ---------------------------------------------------------------------

_COLUMN_FIELDS = frozenset({"elementKey", "elementName", "elementType", "listChildElementKeys"})
_DEFINITION_FIELDS = frozenset({"tableId", "schemaETag", "orderedColumns"})


def parse_table_definition(body: Any) -> list[Column]:
    """TableDefinition (§4.9); tableId and schemaETag are accepted and ignored (D4)."""
    obj = _object(body, "TableDefinition", _DEFINITION_FIELDS)
    _string(obj, "tableId", "TableDefinition")
    _string(obj, "schemaETag", "TableDefinition")
    if obj.get("orderedColumns") is None:
        raise BadRequestError("Error parsing JSON request: orderedColumns is required")
    columns = []
    for index, item in enumerate(_list(obj, "orderedColumns", "TableDefinition")):
        where = f"orderedColumns[{index}]"
        col = _object(item, where, _COLUMN_FIELDS)
        key = _required(col, "elementKey", where)
        name = _required(col, "elementName", where)
        kind = _required(col, "elementType", where)
        columns.append(Column(key, name, kind, _string(col, "listChildElementKeys", where)))
    return columns


def column_json(column: Column) -> JsonDict:
    return {
        "elementKey": column.element_key,
        "elementName": column.element_name,
        "elementType": column.element_type,
        "listChildElementKeys": column.list_child_element_keys,
    }


def table_resource(
    table: TableEntry, table_uri: str, definition_uri: str, acl_uri: str, manifest_etag: str
) -> JsonDict:
    return {
        "tableId": table.table_id,
        "dataETag": table.data_etag,
        "schemaETag": table.schema_etag,
        "selfUri": table_uri,
        "definitionUri": definition_uri,
        "dataUri": f"{definition_uri}/rows",
        "instanceFilesUri": f"{definition_uri}/attachments",
        "diffUri": f"{definition_uri}/diff",
        "aclUri": acl_uri,
        "tableLevelManifestETag": manifest_etag,
    }


def definition_resource(table: TableEntry, table_uri: str, definition_uri: str) -> JsonDict:
    columns = sorted(table.columns, key=lambda c: c.element_key)
    return {
        "tableId": table.table_id,
        "schemaETag": table.schema_etag,
        "orderedColumns": [column_json(c) for c in columns],
        "selfUri": definition_uri,
        "tableUri": table_uri,
    }


# -- rows ----------------------------------------------------------------------------------

_SCOPE_FIELDS = frozenset(
    {"defaultAccess", "rowOwner", "groupReadOnly", "groupModify", "groupPrivileged"}
)
_ROW_FIELDS = frozenset(
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
_ROW_LIST_FIELDS = frozenset({"rows", "dataETag"})
_VALUE_FIELDS = frozenset({"column", "value"})


def _parse_scope(value: Any, where: str) -> FilterScope | None:
    if value is None:
        return None
    obj = _object(value, where, _SCOPE_FIELDS)
    access = _string(obj, "defaultAccess", where)
    if access is None:
        default_access = Access.FULL  # D12: a null defaultAccess counts as FULL
    else:
        try:
            default_access = Access(access)
        except ValueError:
            raise BadRequestError(
                f"Error parsing JSON request: {where}.defaultAccess {access!r} is not one of "
                "FULL, MODIFY, READ_ONLY, HIDDEN"
            ) from None
    return FilterScope(
        default_access,
        _string(obj, "rowOwner", where),
        _string(obj, "groupReadOnly", where),
        _string(obj, "groupModify", where),
        _string(obj, "groupPrivileged", where),
    )


def parse_row_list(body: Any, schema: TableSchema) -> tuple[str | None, list[IncomingRow]]:
    """RowList (§4.17), every row validated against the table before anything is locked."""
    obj = _object(body, "RowList", _ROW_LIST_FIELDS)
    data_etag = _string(obj, "dataETag", "RowList")
    rows = []
    for index, item in enumerate(_list(obj, "rows", "RowList")):
        where = f"rows[{index}]"
        row = _object(item, where, _ROW_FIELDS)
        row_id = _string(row, "id", where)
        if row_id is not None and (row_id == "" or len(row_id) > MAX_ID_LENGTH):
            raise BadRequestError(
                f"Bad arguments: {where}.id must be 1 to {MAX_ID_LENGTH} characters"
            )
        pairs: list[tuple[str, str | None]] = []
        for j, entry in enumerate(_list(row, "orderedColumns", where)):
            value_obj = _object(entry, f"{where}.orderedColumns[{j}]", _VALUE_FIELDS)
            column = _required(value_obj, "column", f"{where}.orderedColumns[{j}]")
            value = _string(value_obj, "value", f"{where}.orderedColumns[{j}]", allow_nul=True)
            pairs.append((column, value))
        for key in ("dataETagAtModification", "createUser", "lastUpdateUser", "selfUri"):
            _string(row, key, where)  # accepted, type-checked and ignored
        rows.append(
            IncomingRow(
                row_id=row_id,
                row_etag=_string(row, "rowETag", where),
                deleted=_bool(row, "deleted", where),
                form_id=_string(row, "formId", where),
                locale=_string(row, "locale", where),
                savepoint_type=_string(row, "savepointType", where),
                savepoint_timestamp=_string(row, "savepointTimestamp", where),
                savepoint_creator=_string(row, "savepointCreator", where),
                scope=_parse_scope(row.get("filterScope"), f"{where}.filterScope"),
                values=normalise_values(schema, pairs),
            )
        )
    return data_etag, rows


def scope_json(scope: FilterScope) -> JsonDict:
    return {
        "defaultAccess": scope.default_access.value,
        "rowOwner": scope.row_owner,
        "groupReadOnly": scope.group_read_only,
        "groupModify": scope.group_modify,
        "groupPrivileged": scope.group_privileged,
    }


def row_resource(row: StoredRow, retained: Sequence[str], self_uri: str | None) -> JsonDict:
    """RowResource (§4.15): every retained column once, sorted, values as stored."""
    return {
        "id": row.row_id,
        "rowETag": row.row_etag,
        "dataETagAtModification": row.data_etag_at_modification,
        "deleted": row.deleted,
        "createUser": row.create_user,
        "lastUpdateUser": row.last_update_user,
        "formId": row.form_id,
        "locale": row.locale,
        "savepointType": row.savepoint_type,
        "savepointTimestamp": row.savepoint_timestamp,
        "savepointCreator": row.savepoint_creator,
        "filterScope": scope_json(row.scope),
        "orderedColumns": [{"column": c, "value": row.values.get(c)} for c in retained],
        "selfUri": self_uri,
    }


def row_outcome(outcome: RowOutcome, retained: Sequence[str]) -> JsonDict:
    """RowOutcome (§4.18): SUCCESS trimmed to the five fields the client reads."""
    if outcome.outcome is Outcome.IN_CONFLICT:
        body = row_resource(outcome.row, retained, None)
    else:
        row = outcome.row
        body = {
            "id": row.row_id,
            "rowETag": row.row_etag or None,
            "dataETagAtModification": row.data_etag_at_modification,
            "deleted": row.deleted,
            "createUser": None,
            "lastUpdateUser": None,
            "formId": None,
            "locale": None,
            "savepointType": None,
            "savepointTimestamp": None,
            "savepointCreator": None,
            "filterScope": scope_json(row.scope),
            "orderedColumns": None,
            "selfUri": None,
        }
    body["outcome"] = outcome.outcome.value
    return body


# -- identity ------------------------------------------------------------------------------


def privileges_info(principal: Principal) -> JsonDict:
    return {
        "user_id": principal.user_id,
        "full_name": principal.full_name,
        "defaultGroup": principal.default_group,
        "roles": sorted(principal.authorities),
    }


def user_info(user: UserInfo) -> JsonDict:
    return {"user_id": user.user_id, "full_name": user.full_name, "roles": list(user.roles)}


# -- ACLs ----------------------------------------------------------------------------------

SCOPE_TYPES = frozenset({"DEFAULT", "USER", "GROUP"})
TABLE_ROLES = frozenset(
    {
        "NONE",
        "FILTERED_READER",
        "FILTERED_WRITER",
        "UNFILTERED_READER_FILTERED_WRITER",
        "READER",
        "WRITER",
        "OWNER",
    }
)


def parse_acl_role(body: Any) -> str:
    """TableAcl (§4.24); only `role` is used, the scope comes from the path."""
    obj = _object(body, "TableAcl", frozenset({"scope", "role"}))
    if obj.get("scope") is not None:
        scope = _object(obj["scope"], "TableAcl.scope", frozenset({"type", "value"}))
        _string(scope, "type", "TableAcl.scope")
        _string(scope, "value", "TableAcl.scope")
    role = _required(obj, "role", "TableAcl")
    if role not in TABLE_ROLES:
        raise BadRequestError(f"Error parsing JSON request: unknown role {role!r}")
    return role


def acl_resource(acl: TableAcl, acl_uri: str, table_uri: str) -> JsonDict:
    suffix = {"DEFAULT": "default", "USER": "user", "GROUP": "group"}[acl.scope_type]
    self_uri = f"{acl_uri}/{suffix}"
    if acl.scope_type != "DEFAULT":
        from sync_endpoint.api.urls import segment

        self_uri += "/" + (segment(acl.scope_value) if acl.scope_value is not None else "null")
    return {
        "scope": {"type": acl.scope_type, "value": acl.scope_value},
        "role": acl.role,
        "selfUri": self_uri,
        "aclUri": acl_uri,
        "tableUri": table_uri,
    }
