"""End-to-end smoke test of the fixtures: create a table, push, pull."""

from __future__ import annotations

from tests.helpers import Api, row


async def test_create_push_pull(api: Api) -> None:
    """A table created by an admin takes rows from a sync user and returns them."""
    table = await api.create_table()
    alice = api.as_user("alice")
    result = await alice.push(table, [row(name="Ana", age="34")], None)
    assert result["rows"][0]["outcome"] == "SUCCESS"
    rows = await alice.get_json(table.data_uri)
    assert [r["orderedColumns"][0] for r in rows["rows"]] == [{"column": "age", "value": "34"}]
    assert rows["dataETag"] == result["dataETag"]
