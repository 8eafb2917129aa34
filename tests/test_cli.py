"""The `python -m sync_endpoint` command, run as an operator would, configured by environment."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sync_endpoint.core.models import Principal
from sync_endpoint.identity.file import DirectoryFile, FileIdentityProvider

REPO = Path(__file__).resolve().parents[1]


class Cli:
    """Runs the CLI with SYNC_DATA_DIR in a temp dir and no other inherited SYNC_* key."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
        self.env["SYNC_DATA_DIR"] = str(data_dir)

    def __call__(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sync_endpoint", *args],
            cwd=REPO,
            env={**self.env, **env},
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def authenticate(self, login: str, password: str) -> Principal | None:
        """Check credentials against the directory file the CLI wrote."""
        source = DirectoryFile(
            self.data_dir / "directory.ldif", "dc=example,dc=org", "default_prefix"
        )
        return asyncio.run(FileIdentityProvider(source).authenticate(login, password))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Cli(data_dir)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_migrate_twice(cli: Cli) -> None:
    """`migrate` creates the SQLite schema in the data dir, and repeating it is harmless."""
    assert "up to date" in ok(cli("migrate"))
    assert (cli.data_dir / "sync.sqlite3").is_file()
    assert "up to date" in ok(cli("migrate"))


def test_serve_before_migrate_exits_2_with_hint(cli: Cli) -> None:
    """`serve` on a database without the schema refuses to start and says to migrate."""
    result = cli("serve", "--port", "0")
    assert result.returncode == 2
    assert "sync-endpoint migrate" in result.stderr


def test_users_add_list_remove(cli: Cli) -> None:
    """Users are added with groups (password on stdin), listed, and removed."""
    out = ok(
        cli(
            "users", "add", "alice", "--password-stdin",
            "--group", "synchronize_tables", "--group", "region-north",
            stdin="alice-pw\n",
        )
    )  # fmt: skip
    assert "alice" in out
    assert "alice-pw" not in out
    listing = ok(cli("users", "list"))
    assert "alice\tdefault_prefix synchronize_tables, default_prefix region-north" in listing
    principal = cli.authenticate("alice", "alice-pw")
    assert principal is not None
    assert {"ROLE_SYNCHRONIZE_TABLES", "GROUP_REGION_NORTH"} <= principal.authorities
    assert principal.default_group == "ROLE_SYNCHRONIZE_TABLES"

    assert "removed alice" in ok(cli("users", "remove", "alice"))
    assert "alice" not in ok(cli("users", "list"))
    assert cli.authenticate("alice", "alice-pw") is None
    again = cli("users", "remove", "alice")
    assert again.returncode == 1
    assert "no such user" in again.stderr


def test_users_add_without_group_exits_2(cli: Cli) -> None:
    """A user without --group could never sign in, so `users add` refuses with exit 2."""
    result = cli("users", "add", "bob", "--password-stdin", stdin="bob-pw\n")
    assert result.returncode == 2
    assert "--group" in result.stderr
    assert "bob" not in ok(cli("users", "list"))


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["users", "add", "bob", "--group", "synchronize_tables"], "pw\n"),  # no --password-stdin
        (["users", "add", "bob", "--password-stdin", "--group", "data_viewers"], "\n"),
        (["users", "add", "b,ob", "--password-stdin", "--group", "data_viewers"], "pw\n"),
    ],
)
def test_users_add_bad_input_exits_2(cli: Cli, args: list[str], stdin: str) -> None:
    """No password on stdin, an empty password or an invalid name is exit 2."""
    assert cli(*args, stdin=stdin).returncode == 2


def test_ensure_admin_creates_admin_once(cli: Cli) -> None:
    """ensure-admin creates `admin` with a printed password, then does nothing."""
    out = ok(cli("users", "ensure-admin"))
    match = re.search(r"created administrator 'admin' with password: (\S+)", out)
    assert match, out
    password = match.group(1)
    principal = cli.authenticate("admin", password)
    assert principal is not None
    assert "ROLE_SITE_ACCESS_ADMIN" in principal.authorities

    assert ok(cli("users", "ensure-admin")) == ""
    assert cli.authenticate("admin", password) is not None
    assert ok(cli("users", "list")).splitlines() == ["admin\tdefault_prefix site_admins"]


def test_ensure_admin_uses_configured_password(cli: Cli) -> None:
    """With SYNC_ADMIN_PASSWORD (and SYNC_ADMIN_USER) those are used and not printed."""
    out = ok(cli("users", "ensure-admin", SYNC_ADMIN_PASSWORD="s3cret-pw", SYNC_ADMIN_USER="root"))
    assert "s3cret-pw" not in out
    assert "'root'" in out
    assert cli.authenticate("root", "s3cret-pw") is not None
    assert cli.authenticate("admin", "s3cret-pw") is None


def test_ensure_admin_leaves_existing_directory_alone(cli: Cli) -> None:
    """ensure-admin adds nobody when the directory already has users."""
    ok(cli("users", "add", "alice", "--password-stdin", "--group", "site_admins", stdin="pw"))
    assert ok(cli("users", "ensure-admin")) == ""
    assert ok(cli("users", "list")).splitlines() == ["alice\tdefault_prefix site_admins"]


def test_check_config_masks_secrets(cli: Cli) -> None:
    """check-config masks SYNC_ADMIN_PASSWORD and prints the effective SQLite database URL."""
    out = ok(cli("check-config", SYNC_ADMIN_PASSWORD="hunter2"))
    assert "SYNC_ADMIN_PASSWORD=********" in out.splitlines()
    assert "hunter2" not in out
    database = f"sqlite+aiosqlite:///{(cli.data_dir / 'sync.sqlite3').resolve()}"
    assert f"(database)={database}" in out.splitlines()


def test_check_config_masks_database_password(cli: Cli) -> None:
    """check-config prints a configured database URL with its password masked."""
    url = "postgresql+psycopg://odk:hunter3@db:5432/odk"
    out = ok(cli("check-config", SYNC_DATABASE_URL=url))
    assert "(database)=postgresql+psycopg://odk:********@db:5432/odk" in out.splitlines()
    assert "hunter3" not in out


def test_check_config_reads_env_file(cli: Cli, tmp_path: Path) -> None:
    """--env-file supplies settings; the environment still wins."""
    env_file = tmp_path / "sync.env"
    env_file.write_text("SYNC_PORT=9999\nSYNC_HOST=0.0.0.0\n", encoding="utf-8")
    out = ok(cli("--env-file", str(env_file), "check-config", SYNC_HOST="127.0.0.2"))
    assert "SYNC_PORT=9999" in out.splitlines()
    assert "SYNC_HOST=127.0.0.2" in out.splitlines()


def test_unknown_setting_exits_2(cli: Cli) -> None:
    """An unknown SYNC_FOO stops every command with exit 2 and a message naming it."""
    result = cli("check-config", SYNC_FOO="1")
    assert result.returncode == 2
    assert "SYNC_FOO" in result.stderr
    assert cli("migrate", SYNC_FOO="1").returncode == 2


def test_bad_value_exits_2(cli: Cli) -> None:
    """An invalid value is a configuration error (exit 2) naming the key."""
    result = cli("check-config", SYNC_PORT="eighty")
    assert result.returncode == 2
    assert "SYNC_PORT" in result.stderr


def test_gc_blobs_runs_on_a_migrated_database(cli: Cli) -> None:
    """`gc-blobs` sweeps nothing on a fresh database and reports it."""
    ok(cli("migrate"))
    assert "removed 0 unreferenced blob(s) from the database store" in ok(cli("gc-blobs"))
