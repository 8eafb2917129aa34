"""Drive the ODK-X Android sync simulator, which lives in ../shared and is never copied in."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_TIMEOUT = 900


def shared_dir() -> Path | None:
    """The shared folder beside the repo; absent on plain clones, so callers skip tests."""
    d = (REPO_ROOT / ".." / "shared").resolve()
    return d if d.is_dir() else None


def device_script() -> Path | None:
    """Path of the simulator entry point, or None when it is not available."""
    d = shared_dir()
    if d is None:
        return None
    p = d / "tools" / "odkx-device" / "odkx-device"
    return p if p.is_file() else None


def run_conformance(
    url: str,
    app_id: str,
    admin_user: str,
    admin_password: str,
    user: str,
    password: str,
    extra_args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run every Android conformance scenario against a live server; exit 0 means all pass."""
    script = device_script()
    if script is None:
        raise FileNotFoundError("odkx-device not found under ../shared/tools/odkx-device")
    cmd = [
        "python3",
        str(script),
        "conformance",
        "--url",
        url,
        "--app-id",
        app_id,
        "--admin-user",
        admin_user,
        "--admin-password",
        admin_password,
        "--user",
        user,
        "--password",
        password,
        *extra_args,
    ]
    return subprocess.run(
        cmd,
        cwd=script.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CONFORMANCE_TIMEOUT,
    )
