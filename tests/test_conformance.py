"""The ODK-X Android sync simulator's conformance scenarios against a real server process.

Every scenario is a phone: its last line must read `N passed, 0 failed`. The simulator lives in
`../shared/tools/odkx-device`; the test skips with a reason where that folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_or_skip
from tests.services.device import run_conformance
from tests.services.server import ServerProcess


@pytest.mark.conformance
def test_android_conformance(database_url: str, tmp_path: Path) -> None:
    """A reset, two devices, conflicts, deletes, 5,000-row paging and a lost push all pass."""
    shared_or_skip("tools", "odkx-device", "odkx-device")
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    server = ServerProcess(data_dir, database_url=database_url)
    server.migrate()
    server.add_user("admin", "admin-pw", ["site_admins"])
    server.add_user("tester", "tester-pw", ["synchronize_tables"])
    with server:
        result = run_conformance(server.url, "default", "admin", "admin-pw", "tester", "tester-pw")
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the simulator printed nothing"
    assert lines[-1].endswith(" 0 failed"), output[-4000:]
    assert result.returncode == 0, output[-4000:]
