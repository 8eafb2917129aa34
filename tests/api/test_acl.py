"""Table ACLs: stored, listed and edited by administrators, never enforced (SYNC_PROTOCOL §3.32,
§4.24, §5.17.3; quirk 8.18; §9 items 130–133)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import assert_error, pull_all, values_of
from tests.helpers import Api, Table, row

ACL_RESOURCE_KEYS = frozenset({"scope", "role", "selfUri", "aclUri", "tableUri"})
ACL_LIST_KEYS = frozenset(
    {
        "orderedAcls",
        "webSafeRefetchCursor",
        "webSafeBackwardCursor",
        "webSafeResumeCursor",
        "hasMoreResults",
        "hasPriorResults",
    }
)


def _acl_uri(api: Api, table: Table) -> str:
    return str(table.resource["aclUri"])


def _summary(acls: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(a["scope"]["type"], a["scope"]["value"], a["role"]) for a in acls]


async def test_creator_gets_an_owner_acl(api: Api) -> None:
    """A new table lists one OWNER ACL for its creator's login (item 130)."""
    table = await api.as_user("tables_admin").create_table()
    acl_uri = _acl_uri(api, table)
    assert acl_uri == table.resource["selfUri"] + "/acl"
    listing = await api.get_json(acl_uri)
    assert set(listing) == ACL_LIST_KEYS
    assert listing["hasMoreResults"] is False
    assert listing["hasPriorResults"] is False
    assert listing["orderedAcls"] == [
        {
            "scope": {"type": "USER", "value": "tables_admin"},
            "role": "OWNER",
            "selfUri": acl_uri + "/user/tables_admin",
            "aclUri": acl_uri,
            "tableUri": table.resource["selfUri"],
        }
    ]
    single = await api.get_json(acl_uri + "/user/tables_admin")
    assert single == listing["orderedAcls"][0]
    assert (await api.get_json(acl_uri + "/user"))["orderedAcls"] == listing["orderedAcls"]
    assert (await api.get_json(acl_uri + "/group"))["orderedAcls"] == []


async def test_put_get_delete_group_acl(api: Api) -> None:
    """PUT acl/group/{id} answers the resource with its selfUri; DELETE is idempotent (131, 132)."""
    table = await api.create_table()
    acl_uri = _acl_uri(api, table)
    url = acl_uri + "/group/GROUP_REGION_NORTH"
    response = await api.request("PUT", url, json_body={"role": "READER"})
    assert response.status == 200, await response.text()
    created = await response.json()
    assert set(created) == ACL_RESOURCE_KEYS
    assert created["selfUri"] == url
    assert created["selfUri"].endswith("/acl/group/GROUP_REGION_NORTH")
    assert created["scope"] == {"type": "GROUP", "value": "GROUP_REGION_NORTH"}
    assert created["role"] == "READER"
    assert created["aclUri"] == acl_uri
    assert created["tableUri"] == table.resource["selfUri"]
    assert await api.get_json(url) == created

    replaced = await api.request(
        "PUT",
        url,
        json_body={"scope": {"type": "USER", "value": "ignored"}, "role": "WRITER"},
    )
    assert replaced.status == 200
    assert (await replaced.json())["scope"] == {"type": "GROUP", "value": "GROUP_REGION_NORTH"}
    groups = await api.get_json(acl_uri + "/group")
    assert _summary(groups["orderedAcls"]) == [("GROUP", "GROUP_REGION_NORTH", "WRITER")]
    everything = await api.get_json(acl_uri)
    assert _summary(everything["orderedAcls"]) == [  # sorted by role, then scope (§4.24)
        ("USER", "admin", "OWNER"),
        ("GROUP", "GROUP_REGION_NORTH", "WRITER"),
    ]

    for _ in range(2):
        deleted = await api.request("DELETE", url)
        assert deleted.status == 200
        assert await deleted.read() == b""
    await assert_error(await api.request("GET", url), 404, "RESOURCE_NOT_FOUND")
    assert _summary((await api.get_json(acl_uri))["orderedAcls"]) == [("USER", "admin", "OWNER")]


async def test_default_and_user_acls(api: Api) -> None:
    """The default scope has a null value and `…/acl/default` as selfUri (§2.7, §4.13)."""
    table = await api.create_table()
    acl_uri = _acl_uri(api, table)
    await assert_error(await api.request("GET", acl_uri + "/default"), 404, "RESOURCE_NOT_FOUND")
    default = await api.request("PUT", acl_uri + "/default", json_body={"role": "FILTERED_READER"})
    assert default.status == 200
    body = await default.json()
    assert body["scope"] == {"type": "DEFAULT", "value": None}
    assert body["selfUri"] == acl_uri + "/default"
    user = await api.request("PUT", acl_uri + "/user/alice", json_body={"role": "FILTERED_WRITER"})
    assert (await user.json())["selfUri"] == acl_uri + "/user/alice"
    users = await api.get_json(acl_uri + "/user")
    assert sorted(_summary(users["orderedAcls"])) == [
        ("USER", "admin", "OWNER"),
        ("USER", "alice", "FILTERED_WRITER"),
    ]
    assert (await api.request("DELETE", acl_uri + "/default")).status == 200
    assert (await api.request("DELETE", acl_uri + "/default")).status == 200
    await assert_error(await api.request("GET", acl_uri + "/default"), 404, "RESOURCE_NOT_FOUND")


async def test_unknown_acls_are_404(api: Api) -> None:
    """Reading an ACL that does not exist is 404, not 500 (quirk 8.18); so is an unknown table."""
    table = await api.create_table()
    acl_uri = _acl_uri(api, table)
    for suffix in ("/user/nobody", "/group/GROUP_NOBODY", "/default", "/user/ADMIN"):
        await assert_error(await api.request("GET", acl_uri + suffix), 404, "RESOURCE_NOT_FOUND")
    unknown = api.app_url("/tables/no_table/acl")
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/default", None),
        ("PUT", "/default", {"role": "READER"}),
        ("DELETE", "/group/GROUP_X", None),
    ]:
        response = await api.request(method, unknown + suffix, json_body=body)
        assert response.status == 404, (method, suffix)
        assert (await response.json())["type"] in ("TABLE_NOT_FOUND", "RESOURCE_NOT_FOUND")
    await api.get_json(api.app_url("/tables/no_table"), status=404)


@pytest.mark.parametrize(
    "body",
    [
        {"role": "SUPERUSER"},
        {"role": "reader"},
        {"role": None},
        {},
        {"role": "READER", "extra": 1},
        {"role": "READER", "scope": {"type": "GROUP", "value": "x", "other": 1}},
        ["READER"],
        {"role": 3},
    ],
)
async def test_bad_acl_body_is_400_and_stores_nothing(api: Api, body: Any) -> None:
    """An unknown role, a missing role or an unknown property is 400, nothing stored."""
    table = await api.create_table()
    acl_uri = _acl_uri(api, table)
    response = await api.request("PUT", acl_uri + "/group/GROUP_REGION_NORTH", json_body=body)
    await assert_error(response, 400, "BAD_REQUEST")
    assert _summary((await api.get_json(acl_uri))["orderedAcls"]) == [("USER", "admin", "OWNER")]


async def test_group_acl_needs_a_group_id(api: Api) -> None:
    """A GROUP scope must name a group: the literal `null` is refused (§4.13)."""
    table = await api.create_table()
    response = await api.request(
        "PUT", _acl_uri(api, table) + "/group/null", json_body={"role": "READER"}
    )
    await assert_error(response, 400, "BAD_REQUEST")


async def test_acl_list_paging(api: Api) -> None:
    """ACL lists page with fetchLimit and cursors, each ACL exactly once (§2.8)."""
    table = await api.create_table()
    acl_uri = _acl_uri(api, table)
    for name in ("GROUP_A", "GROUP_B", "GROUP_C"):
        await api.request("PUT", f"{acl_uri}/group/{name}", json_body={"role": "READER"})
    seen: list[tuple[str, str | None, str]] = []
    params = {"fetchLimit": "1"}
    for _ in range(10):
        page = await api.get_json(acl_uri, params=params)
        seen.extend(_summary(page["orderedAcls"]))
        if not page["hasMoreResults"]:
            break
        params["cursor"] = page["webSafeResumeCursor"]
    assert sorted(seen) == sorted(
        [("USER", "admin", "OWNER")]
        + [("GROUP", g, "READER") for g in ("GROUP_A", "GROUP_B", "GROUP_C")]
    )
    assert len(seen) == len(set(seen))


async def test_acls_do_not_change_what_users_can_do(api: Api) -> None:
    """NONE ACLs for default, user and group leave alice's reads and writes intact (item 133)."""
    table = await api.create_table()
    first = await api.push(table, [row(name="before")], None)
    acl_uri = _acl_uri(api, table)
    for suffix in (
        "/default",
        "/user/alice",
        "/user/username:alice",
        "/group/GROUP_REGION_NORTH",
        "/group/ROLE_SYNCHRONIZE_TABLES",
    ):
        response = await api.request("PUT", acl_uri + suffix, json_body={"role": "NONE"})
        assert response.status == 200, suffix
    alice = api.as_user("alice")
    listing = await alice.get_json(api.app_url("/tables"))
    assert [t["tableId"] for t in listing["tables"]] == [table.table_id]
    assert (await alice.table_resource(table))["schemaETag"] == table.schema_etag
    assert [values_of(r)["name"] for r in (await alice.get_json(table.data_uri))["rows"]] == [
        "before"
    ]
    pushed = await alice.push(table, [row(name="after")], first["dataETag"])
    assert pushed["rows"][0]["outcome"] == "SUCCESS"
    rows, _ = await pull_all(alice, table.diff_uri, data_etag=first["dataETag"])
    assert [values_of(r)["name"] for r in rows] == ["after"]
    update = row(first["rows"][0]["id"], first["rows"][0]["rowETag"], name="changed")
    assert (await alice.push(table, [update], pushed["dataETag"]))["rows"][0]["outcome"] == (
        "SUCCESS"
    )


async def test_table_delete_drops_its_acls(api: Api) -> None:
    """After delete + re-create only the new creator's OWNER ACL exists (§5.12)."""
    table = await api.create_table("census")
    acl_uri = _acl_uri(api, table)
    await api.request("PUT", acl_uri + "/group/GROUP_X", json_body={"role": "READER"})
    assert (await api.request("DELETE", table.definition_uri)).status == 200
    await api.as_user("tables_admin").create_table("census")
    assert _summary((await api.get_json(acl_uri))["orderedAcls"]) == [
        ("USER", "tables_admin", "OWNER")
    ]
