"""Column definitions: elementType grammar, units of retention, value validation (§5.10, §5.11)."""

from __future__ import annotations

import json
import math
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sync_endpoint.core.models import Column, Values
from sync_endpoint.errors import BadColumnNameError, BadRequestError

DATA_TYPES = frozenset(
    {"integer", "number", "boolean", "rowpath", "configpath", "array", "string", "object"}
)

#: Names a client may never use as a user column (§5.5, §5.9).
CLIENT_ONLY_COLUMNS = frozenset({"_id", "_row_etag", "_sync_state", "_conflict_type"})
SHARED_COLUMNS = frozenset(
    {
        "_default_access",
        "_row_owner",
        "_group_read_only",
        "_group_modify",
        "_group_privileged",
        "_savepoint_type",
        "_savepoint_timestamp",
        "_savepoint_creator",
        "_form_id",
        "_locale",
        "_effective_access",
        "_filter_type",
        "_filter_value",
    }
)

MAX_ID_LENGTH = 255
_TYPE_RE = re.compile(r"^([^:()]+)(?::([^:()]+))?(?:\((\d+)\))?$")
# ASCII digits only and full matches: Java's parsers reject other digits and a trailing newline.
_INTEGER_RE = re.compile(r"[+-]?\d+", re.ASCII)
_NUMBER_RE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[dDfF]?", re.ASCII
)
_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "ok", "1"})


def is_identifier(value: str, max_length: int = MAX_ID_LENGTH) -> bool:
    """ODK-X identifiers: a letter, then letters, marks, digits or `_` (§4.8)."""
    if not value or len(value) > max_length:
        return False
    if not unicodedata.category(value[0]).startswith("L"):
        return False
    for char in value[1:]:
        category = unicodedata.category(char)
        if not (category[0] in "LM" or category == "Nd" or char == "_"):
            return False
    return True


def child_keys(column: Column) -> list[str]:
    """The children named by `listChildElementKeys`, which is JSON text (or null)."""
    raw = column.list_child_element_keys
    if raw is None or raw.strip() == "":
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BadRequestError(
            f"Bad arguments: listChildElementKeys of {column.element_key} is not a JSON array"
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(k, str) for k in parsed):
        raise BadRequestError(
            f"Bad arguments: listChildElementKeys of {column.element_key} must list strings"
        )
    return parsed


def data_type(column: Column, has_children: bool) -> str:
    """Resolve the ElementDataType of a column, raising 400 for invalid specifications."""
    match = _TYPE_RE.match(column.element_type.strip())
    if not match:
        raise BadRequestError(f"Bad arguments: invalid elementType {column.element_type!r}")
    name, explicit, _length = match.groups()
    if name in DATA_TYPES:
        if explicit is not None and explicit != name:
            raise BadRequestError(f"Bad arguments: invalid elementType {column.element_type!r}")
        resolved = name
    elif explicit is not None:
        if explicit not in DATA_TYPES:
            raise BadRequestError(f"Bad arguments: unknown data type in {column.element_type!r}")
        resolved = explicit
    else:
        resolved = "object" if has_children else "string"
    if has_children and resolved not in ("object", "array"):
        raise BadRequestError(
            f"Bad arguments: column {column.element_key} has children but is {resolved}"
        )
    if not has_children and resolved in ("object", "array"):
        raise BadRequestError(
            f"Bad arguments: {resolved} column {column.element_key} has no children"
        )
    return resolved


@dataclass(frozen=True)
class TableSchema:
    """A validated definition: data type of every column and the retained (stored) ones."""

    columns: tuple[Column, ...]
    types: dict[str, str]
    retained: tuple[str, ...]

    @classmethod
    def build(cls, columns: Iterable[Column]) -> TableSchema:
        """Validate a whole definition before anything is written (quirk 8.16)."""
        ordered = tuple(sorted(columns, key=lambda c: c.element_key))
        by_key: dict[str, Column] = {}
        for column in ordered:
            if not is_identifier(column.element_key, 200):
                raise BadRequestError(f"Bad arguments: invalid elementKey {column.element_key!r}")
            if column.element_key in by_key:
                raise BadRequestError(f"Bad arguments: duplicate elementKey {column.element_key}")
            if column.element_key.startswith("_"):
                raise BadColumnNameError(f"Bad column name {column.element_key}")
            by_key[column.element_key] = column
        children = {key: child_keys(col) for key, col in by_key.items()}
        for key, kids in children.items():
            for kid in kids:
                if kid not in by_key:
                    raise BadRequestError(f"Bad arguments: {key} lists unknown child {kid}")
        types = {key: data_type(col, bool(children[key])) for key, col in by_key.items()}

        retained = set(by_key)
        for key in sorted(by_key):
            if key in retained and types[key] == "array":
                stack = list(children[key])
                while stack:
                    kid = stack.pop()
                    if kid in retained:
                        retained.discard(kid)
                        stack.extend(children[kid])
        for key in list(retained):
            if children[key] and types[key] != "array":
                retained.discard(key)
        return cls(ordered, types, tuple(sorted(retained)))


def same_definition(stored: Sequence[Column], incoming: Sequence[Column]) -> bool:
    """D4/§5.11: same number of columns and string-equal fields per elementKey, any order."""
    if len(stored) != len(incoming):
        return False
    by_key = {c.element_key: c for c in incoming}
    return all(by_key.get(c.element_key) == c for c in stored)


def normalise_values(schema: TableSchema, pairs: Sequence[tuple[str, str | None]]) -> Values:
    """Check a row's orderedColumns against the schema; returns {column: value}.

    Values are kept as the strings received (D5), except that the empty string in a numeric or
    boolean column becomes null and booleans become `true`/`false`, as the reference stores them
    and as devices parse them (an empty string in a numeric column aborts a device's pull).
    """
    values: dict[str, str | None] = {}
    for column, value in pairs:
        if column in CLIENT_ONLY_COLUMNS:
            raise BadColumnNameError(f"Client-only column name {column}")
        if column in SHARED_COLUMNS:
            raise BadColumnNameError(f"Shared column name {column}")
        kind = schema.types.get(column)
        if kind is None:
            raise BadColumnNameError(f"Bad column name {column}")
        if column not in schema.retained:
            continue  # non-retained parents are silently ignored (§5.5)
        if column in values:
            raise BadRequestError(f"Bad arguments: column {column} appears twice")
        values[column] = _check_value(column, kind, value)
    return values


def _check_value(column: str, kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    if kind in ("integer", "number", "boolean") and value.strip() == "":
        return None
    if kind == "integer":
        if not _INTEGER_RE.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
            raise BadRequestError(f"Bad arguments: {column} expects an integer, got {value!r}")
    elif kind == "number":
        if not _NUMBER_RE.fullmatch(value):
            raise BadRequestError(f"Bad arguments: {column} expects a number, got {value!r}")
    elif kind == "boolean":
        return "true" if value.strip().lower() in _TRUE_WORDS else "false"
    return value


def _ordered_bits(x: float) -> int:
    bits: int = struct.unpack(">q", struct.pack(">d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def numbers_equal(a: str, b: str) -> bool:
    """Doubles within two ULPs (NaN equals NaN), as the reference compares `number` values."""
    try:
        x, y = float(a.rstrip("dDfF")), float(b.rstrip("dDfF"))
    except ValueError:
        return a == b
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(_ordered_bits(x) - _ordered_bits(y)) <= 2


def values_equal(schema: TableSchema, left: Values, right: Values) -> bool:
    """Compare all retained values; `number` columns numerically (§5.5)."""
    for column in schema.retained:
        a, b = left.get(column), right.get(column)
        if a is None or b is None:
            if a is not b:
                return False
        elif a != b and not (schema.types[column] == "number" and numbers_equal(a, b)):
            return False
    return True
