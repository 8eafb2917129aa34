"""Anonymous sync switched on (SYNC_PROTOCOL §5.18, DECISIONS D14, §9 items 18, 21)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import assert_plain_denial, values_of
from tests.helpers import CENSUS_COLUMNS, Api, row


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"anonymous_sync": True}


async def test_anonymous_caller_can_sync_rows(api: Api) -> None:
    """Without credentials one can list tables, pull rows and push rows (item 21)."""
    table = await api.create_table()
    anonymous = api.as_user(None)
    listing = await anonymous.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in listing["tables"]] == [table.table_id]
    assert (await anonymous.get_json(table.data_uri))["rows"] == []

    result = await anonymous.push(table, [row(name="anon", scope=None)], None)
    outcome = result["rows"][0]
    assert outcome["outcome"] == "SUCCESS"
    stored = await anonymous.get_json(table.data_uri + "/" + outcome["id"])
    assert values_of(stored)["name"] == "anon"
    assert stored["createUser"] == "anonymousUser"
    assert stored["lastUpdateUser"] == "anonymousUser"
    diff = await anonymous.get_json(table.diff_uri)
    assert [r["id"] for r in diff["rows"]] == [outcome["id"]]
    assert await anonymous.get_json("/odktables/") == ["default"]


async def test_anonymous_caller_still_cannot_ask_privileges(api: Api) -> None:
    """privilegesInfo and usersInfo stay 401 for anonymous callers (item 18)."""
    anonymous = api.as_user(None)
    for url in (api.app_url("/privilegesInfo"), api.app_url("/usersInfo")):
        await assert_plain_denial(await anonymous.request("GET", url), 401)


async def test_anonymous_caller_cannot_administer(api: Api) -> None:
    """Administration still needs credentials: the anonymous caller gets the challenge."""
    anonymous = api.as_user(None)
    response = await anonymous.request(
        "PUT",
        api.app_url("/tables/anon_table"),
        json_body={"tableId": "anon_table", "schemaETag": None, "orderedColumns": CENSUS_COLUMNS},
    )
    await assert_plain_denial(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="')
    await api.get_json(api.app_url("/tables/anon_table"), status=404)


async def test_wrong_credentials_are_refused_even_with_anonymous_sync(api: Api) -> None:
    """Bad credentials are not silently downgraded to anonymous access."""
    response = await api.client.get(
        api.app_url("/tables"), headers={"Authorization": "Basic YWxpY2U6d3Jvbmc="}
    )
    await assert_plain_denial(response, 401)


async def test_anonymous_users_info_entry_reflects_the_setting(api: Api) -> None:
    """With anonymous sync on, the `anonymous` entry of usersInfo carries the sync role."""
    users = await api.get_json(api.app_url("/usersInfo"))
    anonymous = next(u for u in users if u["user_id"] == "anonymous")
    assert anonymous["roles"] == sorted(
        ["ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_ANONYMOUS"]
    )
