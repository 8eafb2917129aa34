"""The ODK-X Android sync simulator keeps syncing through server-side row access (DECISIONS D12).

A real server process (file backend, SQLite) holds the sample app `geotaggerTest`, pushed by an
admin device's "reset app server". The admin then restricts rows through the HTTP API, and a
plain sync user's device must keep completing its syncs: a HIDDEN row never arrives, a refused
edit of a READ_ONLY row comes back as a conflict that "take server" resolves (CLIENT_FLOW §2.9
step 5), and a row hidden after the device pulled it is removed by the next sync (a tombstone
in the diff). The simulator lives in `../shared/tools/odkx-device`; the test skips where the
shared folder is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import shared_or_skip
from tests.services.server import ServerProcess

pytestmark = pytest.mark.conformance

APP_ID = "default"
TABLE = "geotagger"
ADMIN = ("admin", "admin-pw")
USER = ("walker", "walker-pw")
ODK = {"X-OpenDataKit-Version": "2.0"}
# Sample rows without attachments (the sample's only image belongs to 86034682-…).
READ_ONLY_ROW = "4acac34a-5be6-44da-bf3c-ea0b4f6cee29"  # The Ave
HIDDEN_ROW = "c348df6b-f14d-429a-b921-778269bb7f74"  # !Kite hill... Gasworks
LATER_HIDDEN_ROW = "1f9e6f19-c50a-4436-9328-1d70cdb73493"  # Greenwood
SAMPLE_ROWS = 13


class RowAccessServer(ServerProcess):
    """The real server with row access enforced; the suite's SYNC_TEST_* are not settings."""

    def env(self) -> dict[str, str]:
        env = super().env()
        for key in [k for k in env if k.startswith("SYNC_TEST_")]:
            del env[key]
        env.update(SYNC_IDENTITY_BACKEND="file", SYNC_ROW_ACCESS="server")
        return env


@dataclass(frozen=True)
class Record:
    """One local row record as `show` prints it."""

    state: str
    conflict_type: str  # "None", or 0-3 as in ODK-X's ConflictType
    row_etag: str
    values: dict[str, Any]

    @property
    def synced(self) -> bool:
        return (self.state, self.conflict_type) == ("synced", "None")


@dataclass
class SimulatedDevice:
    """One odkx-device directory, driven through the simulator's command line."""

    script: Path
    path: Path
    url: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.script), *args, "--device", str(self.path)],
            cwd=self.script.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def do(self, *args: str) -> str:
        """A local command (seed, update-row, resolve, show) that must succeed."""
        result = self.run(*args)
        assert result.returncode == 0, f"odkx-device {args[0]}: {result.stdout}{result.stderr}"
        return result.stdout

    def sync(self, login: tuple[str, str], *extra: str) -> tuple[str, str]:
        """One Android sync; returns the final SyncStatus and the whole report."""
        user, password = login
        result = self.run(
            "sync", "--url", self.url, "--app-id", APP_ID, "--user", user,
            "--password", password, "--allow-unsafe-auth", *extra,
        )  # fmt: skip
        output = result.stdout + result.stderr
        status = next(
            (line.split()[1] for line in output.splitlines() if line.startswith("status: ")),
            "(no status line)",
        )
        assert (result.returncode == 0) == (status == "SYNC_COMPLETE"), output
        return status, output

    def rows(self) -> dict[str, list[Record]]:
        """`show` for the geotagger table: row id -> its records (two while in conflict)."""
        found: dict[str, list[Record]] = {}
        table = None
        for line in self.do("show").splitlines():
            if line.startswith("table "):
                table = line.split()[1]
            elif line.startswith("  ") and table == TABLE:
                row_id, state, conflict, etag, values = line.strip().split(" ", 4)
                found.setdefault(row_id, []).append(
                    Record(
                        state,
                        conflict.removeprefix("conflict="),
                        etag.removeprefix("etag="),
                        json.loads(values),
                    )
                )
        return found


class AdminApi:
    """The admin's HTTP view of the table: rows read and rewritten as the Web UI would."""

    def __init__(self, url: str) -> None:
        self.session = requests.Session()
        self.session.auth = ADMIN
        self.session.headers.update(ODK)
        table = self.get(f"{url}/odktables/{APP_ID}/tables/{TABLE}")
        self.data_uri: str = table["dataUri"]

    def get(self, url: str) -> Any:
        response = self.session.get(url, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def row(self, row_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"{self.data_uri}/{row_id}")
        return result

    def set_scope(self, row_id: str, **scope: str | None) -> None:
        """PUT the full current row with its rowETag, changing only filterScope."""
        current = self.row(row_id)
        data_etag = self.get(self.data_uri)["dataETag"]
        changed = {k: v for k, v in current.items() if k != "selfUri"}
        changed["filterScope"] = {
            "defaultAccess": None,
            "rowOwner": None,
            "groupReadOnly": None,
            "groupModify": None,
            "groupPrivileged": None,
            **scope,
        }
        response = self.session.put(
            self.data_uri, json={"rows": [changed], "dataETag": data_etag}, timeout=30
        )
        assert response.status_code == 200, response.text
        outcome = response.json()["rows"][0]
        assert outcome["outcome"] == "SUCCESS", outcome
        assert outcome["filterScope"]["defaultAccess"] == scope["defaultAccess"]

    def close(self) -> None:
        self.session.close()


def value(row: dict[str, Any], column: str) -> str | None:
    """A column's value in a RowResource."""
    found: str | None = next(c["value"] for c in row["orderedColumns"] if c["column"] == column)
    return found


def test_device_syncs_through_server_side_row_access(tmp_path: Path) -> None:
    """Hidden rows never arrive or are revoked, refused edits resolve, and syncs keep completing."""
    script = shared_or_skip("tools", "odkx-device", "odkx-device")
    sample = shared_or_skip("data", "odkx-sample", "geotaggerTest")
    server = RowAccessServer(tmp_path / "server")
    server.migrate()
    server.add_user(ADMIN[0], ADMIN[1], ["site_admins"])
    server.add_user(USER[0], USER[1], ["synchronize_tables"])
    with server:
        try:
            run_scenario(script, sample, server.url, tmp_path)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log ---\n{server.log_tail()}") from None


def run_scenario(script: Path, sample: Path, url: str, tmp_path: Path) -> None:
    """Reset from an admin device, restrict rows, then sync a plain user's device through it."""
    # `seed --from` takes a folder of table folders: give it one holding only geotaggerTest.
    app = tmp_path / "sample"
    app.mkdir()
    (app / sample.name).symlink_to(sample, target_is_directory=True)
    admin_device = SimulatedDevice(script, tmp_path / "admin-device", url)
    assert admin_device.do("seed", "--from", str(app)).split() == ["seeded", "tables:", TABLE]
    # A real app has app-level files; Android refuses to pull an empty app-level manifest.
    readme = admin_device.path / "app" / "config" / "assets" / "readme.txt"
    readme.parent.mkdir(parents=True)
    readme.write_text("row access scenario\n", encoding="utf-8")
    status, report = admin_device.sync(ADMIN, "--reset-app-server")
    assert status == "SYNC_COMPLETE", report

    api = AdminApi(url)
    try:
        assert len(api.get(api.data_uri)["rows"]) == SAMPLE_ROWS
        api.set_scope(READ_ONLY_ROW, defaultAccess="READ_ONLY", rowOwner="username:admin")
        api.set_scope(HIDDEN_ROW, defaultAccess="HIDDEN", rowOwner="username:admin")
        protected = api.row(READ_ONLY_ROW)

        # A plain sync user's first (full) pull: the HIDDEN row is omitted.
        device = SimulatedDevice(script, tmp_path / "user-device", url)
        status, report = device.sync(USER)
        assert status == "SYNC_COMPLETE", report
        rows = device.rows()
        assert HIDDEN_ROW not in rows
        assert READ_ONLY_ROW in rows
        assert len(rows) == SAMPLE_ROWS - 1
        assert [r.synced for r in rows[READ_ONLY_ROW]] == [True]

        # Editing the READ_ONLY row: the server refuses it as IN_CONFLICT and keeps its row.
        original = value(protected, "Description")
        device.do(
            "update-row", "--table", TABLE, "--row", READ_ONLY_ROW,
            "--set", "Description=edited by walker",
        )  # fmt: skip
        status, report = device.sync(USER)
        assert status in ("CONFLICT_RESOLUTION", "SYNC_COMPLETE"), report
        after = api.row(READ_ONLY_ROW)
        assert after["rowETag"] == protected["rowETag"]
        assert value(after, "Description") == original
        assert after["filterScope"] == protected["filterScope"]
        if status == "CONFLICT_RESOLUTION":
            # The local edit (type 1) against the server's row from the IN_CONFLICT outcome (3).
            local, theirs = device.rows()[READ_ONLY_ROW]
            assert (local.state, local.conflict_type) == ("in_conflict", "1"), local
            assert local.values["Description"] == "edited by walker"
            assert (theirs.state, theirs.conflict_type) == ("in_conflict", "3"), theirs
            assert theirs.values["Description"] == original
            assert theirs.row_etag == protected["rowETag"]
            device.do("resolve", "--table", TABLE, "--row", READ_ONLY_ROW, "--take", "server")
        status, report = device.sync(USER)
        assert status == "SYNC_COMPLETE", report
        [resolved] = device.rows()[READ_ONLY_ROW]
        assert resolved.synced, resolved
        assert resolved.values["Description"] == original
        assert resolved.row_etag == protected["rowETag"]

        # A row the device already holds is hidden: the next sync completes and removes it.
        assert LATER_HIDDEN_ROW in device.rows()
        api.set_scope(LATER_HIDDEN_ROW, defaultAccess="HIDDEN", rowOwner="username:admin")
        status, report = device.sync(USER)
        assert status == "SYNC_COMPLETE", report
        rows = device.rows()
        assert LATER_HIDDEN_ROW not in rows
        assert HIDDEN_ROW not in rows
        assert len(rows) == SAMPLE_ROWS - 2
        assert all([r.synced for r in records] == [True] for records in rows.values()), rows
    finally:
        api.close()
