"""Shared helpers of the deployment tests: running scripts/init, reading env files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INIT = REPO / "scripts" / "init"

DOMAIN = "sync.example.org"
EMAIL = "ops@odkx-deploy.net"
ADMIN_PASSWORD = "ldap-admin-pw-123"


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without SYNC_* (the suite's own and any operator's settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update(extra)
    return env


def run_init(
    *args: str, stdin: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run scripts/init as an operator does (its shebang, the system python3), no terminal.

    `start_new_session` detaches it from any controlling terminal, so getpass cannot open
    /dev/tty and wait for a person: standard input is the only input.
    """
    return subprocess.run(
        [str(INIT), *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=REPO,
        start_new_session=True,
        check=False,
    )


def admin_password_file(directory: Path, password: str = ADMIN_PASSWORD) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ldap-admin.txt"
    path.write_text(password + "\n", encoding="utf-8")
    return path


def init_args(out: Path, password_file: Path, https: bool = True) -> list[str]:
    """The documented automation command (docs/deploy.md §4), writing into `out`."""
    args = ["--non-interactive", "--domain", DOMAIN if https else "192.0.2.10"]
    args += ["--https", "--email", EMAIL] if https else ["--no-https"]
    args += ["--admin-password-file", str(password_file), "--generate-secrets"]
    return [*args, "--output-dir", str(out)]


def prepare_tree(out: Path, https: bool = True) -> Path:
    """A deployment tree as docs/deploy.md expects it: init's output plus compose/ and ldap/."""
    result = run_init(*init_args(out, admin_password_file(out.parent / "input"), https))
    assert result.returncode == 0, result.stderr
    for name in ("compose", "ldap"):
        shutil.copytree(REPO / name, out / name)
    return out


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file, as `set -a; . FILE` would export them."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def files_below(path: Path) -> list[str]:
    """Every file and directory below `path`, relative, sorted (empty if it does not exist)."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
