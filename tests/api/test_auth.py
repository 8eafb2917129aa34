"""Authentication, URL-level roles, privileges, users and app ids (SYNC_PROTOCOL §2.9, §2.10,
§3.1–3.4, §5.16–5.17; DECISIONS D2, D16; §9 items 13–28, 31–35)."""

from __future__ import annotations

import base64

from tests.api.support import (
    USER_INFO_KEYS,
    assert_error,
    assert_odk_headers,
    assert_plain_denial,
)
from tests.conftest import USERS
from tests.helpers import CENSUS_COLUMNS, ODK, Api, row

REALM = "opendatakit.org ODK Sync Endpoint"


def _definition() -> dict[str, object]:
    return {"tableId": None, "schemaETag": None, "orderedColumns": CENSUS_COLUMNS}


async def _assert_challenge(api: Api, headers: dict[str, str] | None = None) -> None:
    response = await api.client.get(api.app_url("/tables"), headers={**ODK, **(headers or {})})
    await assert_plain_denial(response, 401)
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'


async def test_no_credentials_get_the_basic_challenge(api: Api) -> None:
    """Without credentials: 401, `WWW-Authenticate: Basic realm="…"`, text/plain (D2)."""
    await _assert_challenge(api)


async def test_wrong_password_gets_the_basic_challenge(api: Api) -> None:
    """A wrong password or an unknown user is answered like no credentials (item 15)."""
    for login, password in [("alice", "wrong"), ("nobody", "alice-pw"), ("alice", "")]:
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        await _assert_challenge(api, {"Authorization": f"Basic {token}"})


async def test_digest_and_malformed_authorization_count_as_absent(api: Api) -> None:
    """A Digest header, or Basic garbage, gets the Basic challenge, never a 400 (item 16)."""
    digest = (
        'Digest username="alice", realm="x", nonce="abc", uri="/odktables/default/tables", '
        'response="6629fae49393a05397450978507c4ef1"'
    )
    for header in [digest, "Bearer abc.def.ghi", "Basic !!!not-base64!!!", "Basic "]:
        await _assert_challenge(api, {"Authorization": header})


async def test_valid_credentials_are_accepted(api: Api) -> None:
    """Basic credentials of a sync user reach the table list (item 14)."""
    response = await api.as_user("alice").request("GET", api.app_url("/tables"))
    assert response.status == 200
    assert_odk_headers(response)


async def test_sync_user_is_forbidden_to_administer(api: Api) -> None:
    """A sync user gets 403 text/plain on table PUT/DELETE and every ACL endpoint (item 19)."""
    table = await api.create_table()
    alice = api.as_user("alice")
    acl = api.app_url(f"/tables/{table.table_id}/acl")
    attempts = [
        ("PUT", api.app_url("/tables/alices_table"), _definition()),
        ("PUT", api.app_url(f"/tables/{table.table_id}"), _definition()),
        ("DELETE", table.definition_uri, None),
        ("GET", acl, None),
        ("GET", acl + "/user", None),
        ("GET", acl + "/group", None),
        ("GET", acl + "/default", None),
        ("GET", acl + "/user/admin", None),
        ("PUT", acl + "/default", {"role": "NONE"}),
        ("PUT", acl + "/group/GROUP_REGION_NORTH", {"role": "READER"}),
        ("PUT", acl + "/user/alice", {"role": "OWNER"}),
        ("DELETE", acl + "/user/admin", None),
        ("DELETE", acl + "/default", None),
    ]
    for method, url, body in attempts:
        response = await alice.request(method, url, json_body=body)
        await assert_plain_denial(response, 403)

    await api.get_json(api.app_url("/tables/alices_table"), status=404)
    assert (await api.get_json(table.definition_uri))["schemaETag"] == table.schema_etag
    acls = await api.get_json(acl)
    assert [(a["scope"], a["role"]) for a in acls["orderedAcls"]] == [
        ({"type": "USER", "value": "admin"}, "OWNER")
    ]


async def test_table_administrator_may_administer(api: Api) -> None:
    """A holder of ROLE_ADMINISTER_TABLES creates, deletes and edits ACLs (item 20)."""
    tadmin = api.as_user("tables_admin")
    table = await tadmin.create_table()
    acl = api.app_url(f"/tables/{table.table_id}/acl")
    put = await tadmin.request("PUT", acl + "/default", json_body={"role": "READER"})
    assert put.status == 200, await put.text()
    assert (await tadmin.request("GET", acl)).status == 200
    assert (await tadmin.request("DELETE", acl + "/default")).status == 200
    deleted = await tadmin.request("DELETE", table.definition_uri)
    assert deleted.status == 200
    await tadmin.get_json(api.app_url(f"/tables/{table.table_id}"), status=404)


async def test_user_without_any_group_is_forbidden(api: Api) -> None:
    """carol has a valid password but no prefixed group: no authority, 403 everywhere (item 26)."""
    table = await api.create_table()
    carol = api.as_user("carol")
    for method, url in [
        ("GET", "/odktables/"),
        ("GET", api.app_url("/privilegesInfo")),
        ("GET", api.app_url("/usersInfo")),
        ("GET", api.app_url("/tables")),
        ("GET", table.data_uri),
        ("PUT", table.data_uri),
    ]:
        body = {"rows": [row()], "dataETag": None} if method == "PUT" else None
        response = await carol.request(method, url, json_body=body)
        await assert_plain_denial(response, 403)
    assert (await api.get_json(table.data_uri))["rows"] == []


async def test_role_user_without_sync_role(api: Api) -> None:
    """A data viewer (ROLE_USER only) lists apps and privileges but cannot sync (items 17, 19)."""
    viewer = api.as_user("viewer")
    assert await viewer.get_json("/odktables/") == ["default"]
    privileges = await viewer.get_json(api.app_url("/privilegesInfo"))
    assert "ROLE_DATA_VIEWER" in privileges["roles"]
    assert "ROLE_SYNCHRONIZE_TABLES" not in privileges["roles"]
    await assert_plain_denial(await viewer.request("GET", api.app_url("/tables")), 403)


async def test_privileges_info_of_a_sync_user(api: Api) -> None:
    """privilegesInfo: user_id `username:<login>`, sorted roles, defaultGroup (items 22, 25, 31)."""
    info = await api.as_user("alice").get_json(api.app_url("/privilegesInfo"))
    assert info["user_id"] == "username:alice"
    assert isinstance(info["full_name"], str)
    assert info["full_name"]
    assert info["roles"] == sorted(info["roles"])
    assert {
        "ROLE_SYNCHRONIZE_TABLES",
        "ROLE_USER",
        "USER_IS_REGISTERED",
        "GROUP_REGION_NORTH",
    } <= set(info["roles"])
    assert not {"ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES"} & set(info["roles"])
    # The first group is the default group; a well-known group resolves to its role (§4.3).
    assert info["defaultGroup"] == "ROLE_SYNCHRONIZE_TABLES"
    assert info["defaultGroup"] in info["roles"]


async def test_privileges_info_of_administrators(api: Api) -> None:
    """Administer tables and site admins carry their implied roles, sorted (items 23, 24, 32)."""
    tadmin = await api.as_user("tables_admin").get_json(api.app_url("/privilegesInfo"))
    assert tadmin["user_id"] == "username:tables_admin"
    assert {"ROLE_ADMINISTER_TABLES", "ROLE_SUPER_USER_TABLES", "ROLE_SYNCHRONIZE_TABLES"} <= set(
        tadmin["roles"]
    )
    assert "ROLE_SITE_ACCESS_ADMIN" not in tadmin["roles"]
    admin = await api.get_json(api.app_url("/privilegesInfo"))
    assert {
        "ROLE_SITE_ACCESS_ADMIN",
        "ROLE_ADMINISTER_TABLES",
        "ROLE_SUPER_USER_TABLES",
        "ROLE_SYNCHRONIZE_TABLES",
        "ROLE_DATA_OWNER",
        "ROLE_DATA_VIEWER",
        "ROLE_DATA_COLLECTOR",
        "ROLE_USER",
    } <= set(admin["roles"])
    for info in (tadmin, admin):
        assert info["roles"] == sorted(info["roles"])
        assert len(info["roles"]) == len(set(info["roles"]))
    superuser = await api.as_user("super").get_json(api.app_url("/privilegesInfo"))
    assert superuser["defaultGroup"] == "ROLE_SUPER_USER_TABLES"
    assert "GROUP_REGION_NORTH" in superuser["roles"]


async def test_users_info_full_list_for_admin_and_super(api: Api) -> None:
    """Site admins and super users see every directory user plus `anonymous` (item 33)."""
    expected = {f"username:{login}" for login in USERS} | {"anonymous"}
    for login in ("admin", "super", "tables_admin"):
        users = await api.as_user(login).get_json(api.app_url("/usersInfo"))
        by_id = {u["user_id"]: u for u in users}
        assert set(by_id) == expected, login
        assert len(users) == len(by_id)
        for user in users:
            assert set(user) == USER_INFO_KEYS
            assert isinstance(user["full_name"], str)
            assert user["full_name"]
            assert user["roles"] == sorted(user["roles"])
        assert by_id["anonymous"]["full_name"] == "Anonymous Access"
        assert by_id["anonymous"]["roles"] == ["USER_IS_ANONYMOUS"]
        assert "ROLE_SYNCHRONIZE_TABLES" in by_id["username:alice"]["roles"]
        assert "username:carol" not in by_id


async def test_users_info_only_self_for_a_sync_user(api: Api) -> None:
    """A plain sync user sees exactly one entry: themselves, as in privilegesInfo (item 34)."""
    alice = api.as_user("alice")
    users = await alice.get_json(api.app_url("/usersInfo"))
    privileges = await alice.get_json(api.app_url("/privilegesInfo"))
    assert users == [
        {
            "user_id": privileges["user_id"],
            "full_name": privileges["full_name"],
            "roles": privileges["roles"],
        }
    ]


async def test_privileges_and_users_refuse_anonymous_callers(api: Api) -> None:
    """privilegesInfo and usersInfo answer the challenge to anonymous callers (item 18)."""
    anonymous = api.as_user(None)
    for url in (api.app_url("/privilegesInfo"), api.app_url("/usersInfo")):
        response = await anonymous.request("GET", url)
        await assert_plain_denial(response, 401)
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="')


async def test_app_name_list_with_and_without_trailing_slash(api: Api) -> None:
    """`/odktables` and `/odktables/` both list the hosted app ids (§3.1, item 27)."""
    for login in ("admin", "alice"):
        user = api.as_user(login)
        assert await user.get_json("/odktables/") == ["default"]
        assert await user.get_json("/odktables") == ["default"]
    await assert_plain_denial(await api.as_user(None).request("GET", "/odktables/"), 401)


async def test_other_app_id_is_412(api: Api) -> None:
    """An app id that is not hosted answers 412 APP_NAME_MISMATCH to authorized users (item 28)."""
    other = Api(api.client, USERS, "admin", app_id="other")
    for method, url in [
        ("GET", other.app_url("/tables")),
        ("GET", other.app_url("/privilegesInfo")),
        ("GET", other.app_url("/tables/census")),
        ("PUT", other.app_url("/tables/census")),
    ]:
        body = _definition() if method == "PUT" else None
        response = await other.request(method, url, json_body=body)
        error = await assert_error(response, 412, "APP_NAME_MISMATCH")
        assert error["message"] == "AppName (other) differs"
    assert (await api.get_json(api.app_url("/tables")))["tables"] == []
    # The URL-level role check comes first: no credentials still means the challenge.
    anonymous = await other.as_user(None).request("GET", other.app_url("/tables"))
    await assert_plain_denial(anonymous, 401)
