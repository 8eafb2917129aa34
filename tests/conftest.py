"""Shared fixtures: real databases (SQLite files and a PostgreSQL the suite starts), the app.

Every API test runs twice, on SQLite and on PostgreSQL. PostgreSQL comes from
`SYNC_TEST_DATABASE_URL` when set, else from a throwaway cluster started from the Debian
binaries; where neither is possible the PostgreSQL variants skip, except under CI (or with
`SYNC_TEST_REQUIRE_SERVICES=1`), where a missing service is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from sync_endpoint.app import create_app
from sync_endpoint.identity.file import DirectoryFile
from sync_endpoint.settings import Settings
from sync_endpoint.storage.migrate import upgrade
from tests.helpers import Api
from tests.services.postgres import PostgresCluster, postgres_url_from_env

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()

USERS = {
    # login: (password, groups) — first group is the default group
    "admin": ("admin-pw", ["site_admins"]),
    "tables_admin": ("tadmin-pw", ["administer_tables"]),
    "super": ("super-pw", ["super_user_tables", "region_north"]),
    "alice": ("alice-pw", ["synchronize_tables", "region_north"]),
    "bob": ("bob-pw", ["synchronize_tables", "region_south"]),
    "viewer": ("viewer-pw", ["data_viewers"]),
}


def require_services() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("SYNC_TEST_REQUIRE_SERVICES") == "1"


def shared_or_skip(*parts: str) -> Path:
    """A path under ../shared; tests skip with a reason in a clone without it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if require_services():
            pytest.fail(f"{path} is missing (CI provides ../shared)")
        pytest.skip(f"{path} is absent: the shared sample data lives beside the repository")
    return path


# -- databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """Admin URL of a PostgreSQL server (its `postgres` database), or None if unavailable."""
    url = postgres_url_from_env()
    if url:
        yield url
        return
    cluster = PostgresCluster()
    try:
        cluster.start()
    except Exception as exc:  # no binaries on this machine
        if require_services():
            raise
        print(f"PostgreSQL unavailable: {exc}")
        yield None
        return
    try:
        yield cluster.create_database("sync_admin_probe").rsplit("/", 1)[0] + "/postgres"
    finally:
        cluster.stop()


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str | None) -> str | None:
    """A migrated template database; each test clones it (fast, and isolated)."""
    if postgres_server is None:
        return None
    name = f"sync_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(upgrade(url))
    return name


@pytest.fixture(scope="session")
def sqlite_template() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="sync-sqlite-"))
    path = folder / "template.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    yield path
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: str | None,
    postgres_template: str | None,
) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "sync.sqlite3"
        shutil.copyfile(sqlite_template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    if postgres_server is None or postgres_template is None:
        pytest.skip("PostgreSQL is not available on this machine")
    name = f"sync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the application -----------------------------------------------------------------------


def write_directory(settings: Settings, users: dict[str, tuple[str, list[str]]]) -> None:
    source = DirectoryFile(
        settings.effective_directory_file, settings.base_dn, settings.group_prefix
    )
    with source.editing() as directory:
        for login, (password, groups) in users.items():
            directory.add_user(login, password, groups)
        # A user whose only group lacks the prefix: valid password, no authority at all.
        directory.add_user("carol", "carol-pw", ["synchronize_tables"])
        for group in directory.groups:
            group.members = [m for m in group.members if m != "carol"]


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "lock_timeout_seconds": 5.0,
        "credential_cache_seconds": 60,
    }
    values.update(overrides)
    from sync_endpoint.settings import Secret

    return Settings(database_url=Secret(database_url), **values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = make_settings(data_dir, database_url, **settings_overrides)
    write_directory(result, USERS)
    return result


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    return result


@pytest.fixture
def api(client: TestClient[Any, Any]) -> Api:
    """A protocol client logged in as `admin`; use `api.as_user("alice")` for others."""
    return Api(client, USERS, user="admin")


@pytest.fixture
def postgres_database_url(
    postgres_server: str | None, postgres_template: str | None
) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (a template clone) for servers run as processes."""
    if postgres_server is None or postgres_template is None:
        pytest.skip("PostgreSQL is not available on this machine")
    name = f"sync_proc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
