"""Column definitions: elementType grammar, retention, identifiers, values (SYNC_PROTOCOL §5.10)."""

from __future__ import annotations

import json
import math

import pytest

from sync_endpoint.core.columns import (
    TableSchema,
    data_type,
    is_identifier,
    normalise_values,
    numbers_equal,
    same_definition,
    values_equal,
)
from sync_endpoint.core.models import Column
from sync_endpoint.errors import BadColumnNameError, BadRequestError


def col(key: str, element_type: str, *children: str, name: str | None = None) -> Column:
    """A column as a client sends it: listChildElementKeys is JSON text, "[]" for none."""
    return Column(key, name or key, element_type, json.dumps(list(children)))


GEOPOINT = [
    col("location", "geopoint", *(f"location_{p}" for p in ("accuracy", "altitude", "latitude"))),
    col("location_accuracy", "number", name="accuracy"),
    col("location_altitude", "number", name="altitude"),
    col("location_latitude", "number", name="latitude"),
]

CENSUS = TableSchema.build(
    [
        col("age", "integer"),
        col("score", "number"),
        col("ok", "boolean"),
        col("name", "string"),
        col("born", "date"),
        *GEOPOINT,
    ]
)


def check(column: str, value: str | None) -> str | None:
    """Validate one value through the public entry point and return what would be stored."""
    return normalise_values(CENSUS, [(column, value)])[column]


# -- elementType grammar and data type resolution (§5.10.1) ---------------------------------


@pytest.mark.parametrize(
    ("element_type", "has_children", "expected"),
    [
        ("integer", False, "integer"),
        ("number", False, "number"),
        ("boolean", False, "boolean"),
        ("string", False, "string"),
        ("rowpath", False, "rowpath"),
        ("configpath", False, "configpath"),
        ("string(40)", False, "string"),
        ("integer:integer", False, "integer"),
        ("date", False, "string"),
        ("dateTime", False, "string"),
        ("myCount:integer", False, "integer"),
        ("custom:string(10)", False, "string"),
        ("  number  ", False, "number"),
        ("geopoint", True, "object"),
        ("mimeUri", True, "object"),
        ("object", True, "object"),
        ("array", True, "array"),
        ("selectMultiple:array", True, "array"),
    ],
)
def test_data_type_resolution(element_type: str, has_children: bool, expected: str) -> None:
    """A primitive name is its own type, else the explicit `:datatype`, else object/string."""
    kids = ("child",) if has_children else ()
    assert data_type(col("c", element_type, *kids), has_children) == expected


@pytest.mark.parametrize(
    ("element_type", "has_children"),
    [
        ("integer:number", False),  # explicit type differs from the primitive name
        ("foo:bar", False),  # unknown datatype
        ("integer", True),  # children but not object/array
        ("string", True),
        ("geopoint:number", True),
        ("object", False),  # object without children
        ("", False),
        ("a:b:c", False),
        ("string(abc)", False),
        ("string(", False),
    ],
)
def test_invalid_element_types_are_400(element_type: str, has_children: bool) -> None:
    """Invalid type specifications are rejected with BadRequestError (400)."""
    kids = ("child",) if has_children else ()
    with pytest.raises(BadRequestError):
        data_type(col("c", element_type, *kids), has_children)


@pytest.mark.parametrize("element_type", ["array", "selectMultiple:array"])
def test_array_without_children_is_400(element_type: str) -> None:
    """An `array` column without children is invalid (§5.10.1)."""
    with pytest.raises(BadRequestError):
        data_type(col("tags", element_type), has_children=False)


# -- units of retention (§5.10.2) ------------------------------------------------------------


def test_geopoint_parent_not_retained_children_retained() -> None:
    """A geopoint is an object: its number children hold the data, the parent is dropped."""
    schema = TableSchema.build(GEOPOINT)
    assert schema.retained == ("location_accuracy", "location_altitude", "location_latitude")
    assert schema.types["location"] == "object"
    assert schema.types["location_latitude"] == "number"


def test_mime_uri_parent_not_retained() -> None:
    """A mimeUri keeps `photo_uriFragment` (rowpath) and `photo_contentType`, not `photo`."""
    schema = TableSchema.build(
        [
            col("photo", "mimeUri", "photo_uriFragment", "photo_contentType"),
            col("photo_uriFragment", "rowpath", name="uriFragment"),
            col("photo_contentType", "string", name="contentType"),
        ]
    )
    assert schema.retained == ("photo_contentType", "photo_uriFragment")
    assert schema.types["photo_uriFragment"] == "rowpath"


def test_array_retains_itself_and_drops_descendants() -> None:
    """An array is stored as one JSON text; all its descendants, transitively, are dropped."""
    schema = TableSchema.build(
        [
            col("tags", "array", "tags_items"),
            col("tags_items", "string", name="items"),
            col("points", "array", "points_items"),
            col("points_items", "geopoint", "points_items_lat", "points_items_lon"),
            col("points_items_lat", "number"),
            col("points_items_lon", "number"),
        ]
    )
    assert schema.retained == ("points", "tags")


def test_nested_objects_keep_only_leaves() -> None:
    """Objects inside objects are not retained; only the leaf columns are."""
    schema = TableSchema.build(
        [
            col("a", "outer", "a_b", "a_x"),
            col("a_b", "inner", "a_b_c"),
            col("a_b_c", "integer"),
            col("a_x", "string"),
        ]
    )
    assert schema.retained == ("a_b_c", "a_x")


def test_null_child_list_means_no_children() -> None:
    """`listChildElementKeys` null (or blank) is a column without children."""
    schema = TableSchema.build([Column("n", "n", "integer", None), Column("s", "s", "string", " ")])
    assert schema.retained == ("n", "s")


def test_schema_columns_sorted_by_key() -> None:
    """The definition keeps every column, sorted by elementKey."""
    schema = TableSchema.build([col("b", "string"), col("a", "string")])
    assert [c.element_key for c in schema.columns] == ["a", "b"]


@pytest.mark.parametrize(
    "columns",
    [
        [col("a", "geopoint", "a_lat")],  # unknown child
        [col("a", "string"), col("a", "integer")],  # duplicate key
        [col("1a", "string")],
        [col("_a", "string")],
        [col("a b", "string")],
        [Column("a", "a", "object", "not json")],
        [Column("a", "a", "object", '{"a": 1}')],
        [Column("a", "a", "object", "[1]")],
    ],
)
def test_invalid_definitions_are_400(columns: list[Column]) -> None:
    """A definition with bad keys, duplicates or bad child lists is rejected as a whole."""
    with pytest.raises(BadRequestError):
        TableSchema.build(columns)


# -- identifiers (§4.8) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a", "name", "Name_2", "x1", "a_", "é", "données", "e\u0301tat", "日本語", "a" * 255],
)
def test_valid_identifiers(value: str) -> None:
    """A letter, then letters, marks, decimal digits or underscores, at most 255 characters."""
    assert is_identifier(value)


@pytest.mark.parametrize(
    "value",
    ["", "_a", "1a", "\u0663a", "a-b", "a b", "a.b", "a$", "\u0301a", "a" * 256],
)
def test_invalid_identifiers(value: str) -> None:
    """Empty, too long, or starting with a non-letter, or containing other characters: invalid."""
    assert not is_identifier(value)


def test_identifier_max_length_parameter() -> None:
    """The length limit is a parameter."""
    assert is_identifier("abc", max_length=3)
    assert not is_identifier("abcd", max_length=3)


# -- same_definition (§5.11, D4) -------------------------------------------------------------


def test_same_definition_ignores_order() -> None:
    """Column order is irrelevant when comparing definitions."""
    stored = [col("a", "string"), col("b", "integer")]
    assert same_definition(stored, list(reversed(stored)))


def test_empty_child_list_and_null_differ() -> None:
    """`"[]"` and null are different values of listChildElementKeys."""
    assert not same_definition([col("a", "string")], [Column("a", "a", "string", None)])
    assert same_definition([Column("a", "a", "string", None)], [Column("a", "a", "string", None)])


@pytest.mark.parametrize(
    "incoming",
    [
        [col("a", "string")],
        [col("a", "string"), col("b", "integer"), col("c", "string")],
        [col("a", "string"), col("b", "number")],
        [col("a", "string"), col("b", "integer", name="B")],
        [col("a", "string"), col("x", "integer")],
    ],
)
def test_different_definitions(incoming: list[Column]) -> None:
    """A different column count, type, name or key makes the definitions differ."""
    assert not same_definition([col("a", "string"), col("b", "integer")], incoming)


# -- value validation (§5.5, §5.10.3) ---------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["5", "+5", "-0", "0", "9223372036854775807", "-9223372036854775808"]
)
def test_integer_values_accepted(value: str) -> None:
    """Decimal integers within 64 bits are stored exactly as received."""
    assert check("age", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "5.0",
        "abc",
        "9223372036854775808",
        "-9223372036854775809",
        "1e3",
        " 5",
        "0x10",
        "1_000",
        "+",
    ],
)
def test_integer_values_rejected(value: str) -> None:
    """Non-integers and integers beyond int64 are a 400."""
    with pytest.raises(BadRequestError):
        check("age", value)


def test_integer_with_trailing_newline_rejected() -> None:
    """An integer value with a trailing newline is not decimal text and is a 400."""
    with pytest.raises(BadRequestError):
        check("age", "5\n")


@pytest.mark.parametrize(
    "value",
    ["1.0E-5", "NaN", "-Infinity", "Infinity", ".5", "5.", "3.5", "-2", "+1e10", "1.5d"],
)
def test_number_values_accepted(value: str) -> None:
    """Java double text, NaN and infinities included, is stored exactly as received."""
    assert check("score", value) == value


@pytest.mark.parametrize(
    "value", ["1_000", "0x10", "abc", "1.2.3", "e5", "--1", "1e", "nan", "inf", ".", " 1"]
)
def test_number_values_rejected(value: str) -> None:
    """Text that is not a Java double is a 400."""
    with pytest.raises(BadRequestError):
        check("score", value)


def test_number_with_non_ascii_digits_rejected() -> None:
    """A number written with non-ASCII digits is not a Java double and is a 400."""
    with pytest.raises(BadRequestError):
        check("score", "\u0661.\u0665")


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("true", "true"),
        ("TRUE", "true"),
        ("t", "true"),
        ("Yes", "true"),
        ("y", "true"),
        ("OK", "true"),
        ("1", "true"),
        (" true ", "true"),
        ("false", "false"),
        ("F", "false"),
        ("no", "false"),
        ("0", "false"),
        ("anything", "false"),
        ("", None),
        (None, None),
    ],
)
def test_boolean_normalisation(value: str | None, stored: str | None) -> None:
    """true/t/yes/y/ok/1 (any case) become "true", other text "false", empty null."""
    assert check("ok", value) == stored


@pytest.mark.parametrize("column", ["age", "score", "ok"])
def test_empty_string_in_numeric_column_is_null(column: str) -> None:
    """An empty string in an integer, number or boolean column is stored as null."""
    assert check(column, "") is None


def test_strings_and_nulls_kept_verbatim() -> None:
    """String-like values, the empty string and null are kept exactly."""
    assert check("name", "") == ""
    assert check("name", "  Ana \n") == "  Ana \n"
    assert check("born", "2024-01-02") == "2024-01-02"
    assert check("age", None) is None


def test_non_retained_parent_silently_ignored() -> None:
    """A value for a non-retained parent (the geopoint itself) is dropped without error."""
    values = normalise_values(CENSUS, [("location", "x"), ("location_latitude", "1.5")])
    assert values == {"location_latitude": "1.5"}


@pytest.mark.parametrize("column", ["_id", "_row_etag", "_sync_state", "_conflict_type"])
def test_client_only_columns_rejected(column: str) -> None:
    """Client-only metadata columns are BAD_COLUMN_NAME."""
    with pytest.raises(BadColumnNameError, match="Client-only"):
        normalise_values(CENSUS, [(column, "x")])


@pytest.mark.parametrize("column", ["_form_id", "_default_access", "_savepoint_timestamp"])
def test_shared_columns_rejected(column: str) -> None:
    """Shared metadata columns are BAD_COLUMN_NAME."""
    with pytest.raises(BadColumnNameError, match="Shared"):
        normalise_values(CENSUS, [(column, "x")])


def test_unknown_column_rejected() -> None:
    """A column the table does not have is BAD_COLUMN_NAME."""
    with pytest.raises(BadColumnNameError):
        normalise_values(CENSUS, [("nope", "x")])


def test_column_twice_rejected() -> None:
    """A column given twice in one row is a 400."""
    with pytest.raises(BadRequestError):
        normalise_values(CENSUS, [("age", "1"), ("age", "2")])


# -- numeric comparison (§5.5 "matching significant field values") ---------------------------


def ulps(x: float, n: int) -> str:
    """The double `n` ULPs above `x`, as Java-style text."""
    for _ in range(n):
        x = math.nextafter(x, math.inf)
    return repr(x)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("9.8", "9.80"),
        ("1", "1.0"),
        ("1.0E-5", "0.00001"),
        ("1.5d", "1.5"),
        ("0.0", "-0.0"),
        ("1.0", ulps(1.0, 1)),
        ("1.0", ulps(1.0, 2)),
        ("1.0E300", ulps(1e300, 2)),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("abc", "abc"),
    ],
)
def test_numbers_equal(a: str, b: str) -> None:
    """Equal as doubles within two ULPs; NaN equals NaN; same-sign infinities are equal."""
    assert numbers_equal(a, b)
    assert numbers_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("9.8", "9.81"),
        ("1.0", ulps(1.0, 3)),
        ("NaN", "1"),
        ("NaN", "Infinity"),
        ("Infinity", "-Infinity"),
        ("Infinity", "1.7976931348623157E308"),
        ("abc", "abd"),
    ],
)
def test_numbers_not_equal(a: str, b: str) -> None:
    """Beyond two ULPs, NaN against a number, and opposite infinities are different."""
    assert not numbers_equal(a, b)
    assert not numbers_equal(b, a)


def test_values_equal_numbers_leniently_others_exactly() -> None:
    """`number` columns compare numerically; strings and integers compare as text."""
    assert values_equal(CENSUS, {"score": "9.8"}, {"score": "9.80"})
    assert not values_equal(CENSUS, {"name": "9.8"}, {"name": "9.80"})
    assert not values_equal(CENSUS, {"age": "5"}, {"age": "+5"})
    assert values_equal(CENSUS, {"age": "5", "name": "x"}, {"name": "x", "age": "5"})


def test_values_equal_nulls() -> None:
    """Null equals only null (a missing value is null); null never equals the empty string."""
    assert values_equal(CENSUS, {"name": None}, {})
    assert not values_equal(CENSUS, {"name": None}, {"name": ""})
    assert not values_equal(CENSUS, {"score": "1"}, {"score": None})


def test_values_equal_ignores_non_retained_keys() -> None:
    """Only retained columns take part in the comparison."""
    assert values_equal(CENSUS, {"location": "a", "name": "x"}, {"location": "b", "name": "x"})
