"""The whole server with SYNC_IDENTITY_BACKEND=ldap against the real slapd (IDENTITY §12, §13):
privilegesInfo, usersInfo, a table list, 401/403, and 503 when the directory fails (D13)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sync_endpoint.app import create_app
from sync_endpoint.settings import Secret
from tests.conftest import make_settings
from tests.identity.ldap_directory import BASE_DN, READONLY_DN, READONLY_PASSWORD
from tests.services.slapd import SlapdServer

ODK = {"X-OpenDataKit-Version": "2.0"}
ALICE_ROLES = [
    "AUTH_LDAP", "GROUP_REGION_NORTH", "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_REGISTERED",
]  # fmt: skip
BOB_ROLES = [
    "AUTH_LDAP", "ROLE_ADMINISTER_TABLES", "ROLE_DATA_COLLECTOR", "ROLE_DATA_OWNER",
    "ROLE_DATA_VIEWER", "ROLE_SITE_ACCESS_ADMIN", "ROLE_SUPER_USER_TABLES",
    "ROLE_SYNCHRONIZE_TABLES", "ROLE_USER", "USER_IS_REGISTERED",
]  # fmt: skip


def basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {**ODK, "Authorization": f"Basic {token}"}


def ldap_app_settings(tmp_path: Path, database_url: str, url: str, **overrides: Any) -> Any:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "identity_backend": "ldap",
        "ldap_url": url,
        "base_dn": BASE_DN,
        "ldap_bind_dn": READONLY_DN,
        "ldap_bind_password": Secret(READONLY_PASSWORD),
    }
    values.update(overrides)
    return make_settings(data_dir, database_url, **values)


@pytest.fixture
async def ldap_client(
    aiohttp_client: Any, tmp_path: Path, database_url: str, slapd: SlapdServer
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(ldap_app_settings(tmp_path, database_url, slapd.url))
    )
    return client


async def test_privileges_info_of_alice(ldap_client: TestClient[Any, Any]) -> None:
    """IDENTITY §13.1 step 7: alice's privilegesInfo, verbatim (checklist 18, 19)."""
    response = await ldap_client.get(
        "/odktables/default/privilegesInfo", headers=basic("alice", "s3cret")
    )
    assert response.status == 200
    assert await response.json() == {
        "user_id": "username:alice",
        "full_name": "alice",
        "defaultGroup": "GROUP_REGION_NORTH",
        "roles": ALICE_ROLES,
    }


async def test_challenge_and_wrong_password(ldap_client: TestClient[Any, Any]) -> None:
    """No credentials and wrong ones both get the Basic challenge (§13.1 step 1, checklist 4)."""
    for headers in (ODK, basic("alice", "wrong"), basic("dave", "dave-pw")):
        response = await ldap_client.get("/odktables/default/privilegesInfo", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_table_list_for_synchronizing_users(ldap_client: TestClient[Any, Any]) -> None:
    """alice (503) and bob (500) list tables; carol (no group) gets 403 everywhere (14)."""
    for login, password in (("alice", "s3cret"), ("bob", "bob-pw")):
        response = await ldap_client.get(
            "/odktables/default/tables", headers=basic(login, password)
        )
        assert response.status == 200, login
        assert "tables" in await response.json()
    for path in ("/odktables/default/privilegesInfo", "/odktables/default/tables", "/odktables"):
        response = await ldap_client.get(path, headers=basic("carol", "carol-pw"))
        assert response.status == 403, path
        assert response.headers["X-OpenDataKit-Version"] == "2.0"


async def test_users_info_full_list_for_bob(ldap_client: TestClient[Any, Any]) -> None:
    """IDENTITY §13.2: bob sees alice, himself and the anonymous entry; carol is absent (21, 22)."""
    response = await ldap_client.get("/odktables/default/usersInfo", headers=basic("bob", "bob-pw"))
    assert response.status == 200
    users = {entry["user_id"]: entry for entry in await response.json()}
    assert users["username:alice"] == {
        "user_id": "username:alice",
        "full_name": "Alice",
        "roles": ALICE_ROLES,
    }
    assert users["username:bob"] == {
        "user_id": "username:bob",
        "full_name": "Bob",
        "roles": BOB_ROLES,
    }
    assert users["anonymous"] == {
        "user_id": "anonymous",
        "full_name": "Anonymous Access",
        "roles": ["USER_IS_ANONYMOUS"],
    }
    assert "username:carol" not in users
    assert "username:ghost" not in users  # dangling memberUid: skipped, not a 500 (checklist 24)


async def test_users_info_for_an_ordinary_user(ldap_client: TestClient[Any, Any]) -> None:
    """alice (no list role) gets a one-element list: herself (checklist 21)."""
    response = await ldap_client.get(
        "/odktables/default/usersInfo", headers=basic("alice", "s3cret")
    )
    assert response.status == 200
    assert await response.json() == [
        {"user_id": "username:alice", "full_name": "alice", "roles": ALICE_ROLES}
    ]


async def test_ready_probe(ldap_client: TestClient[Any, Any]) -> None:
    """/ready pings the directory through the lookup account."""
    response = await ldap_client.get("/ready")
    assert response.status == 200


async def test_wrong_readonly_password_gives_503(
    aiohttp_client: Any, tmp_path: Path, database_url: str, slapd: SlapdServer
) -> None:
    """A rejected lookup account is 503 with Retry-After, never 401 or 500 (D13, checklist 28)."""
    settings = ldap_app_settings(
        tmp_path, database_url, slapd.url, ldap_bind_password=Secret("wrong")
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.get(
        "/odktables/default/privilegesInfo", headers=basic("alice", "s3cret")
    )
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await response.json())["type"] == "INTERNAL_ERROR"
    assert (await client.get("/ready")).status == 503
    # Wrong user passwords are still 401: the user bind comes before any look-up.
    response = await client.get("/odktables/default/privilegesInfo", headers=basic("alice", "x"))
    assert response.status == 401
