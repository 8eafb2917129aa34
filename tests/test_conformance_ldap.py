"""The ODK-X Android sync simulator's conformance scenarios with SYNC_IDENTITY_BACKEND=ldap.

A real server process (SQLite; PostgreSQL is covered by tests/test_conformance.py with the file
backend) checks every request against a real slapd holding ldap/bootstrap.ldif's layout and
the people of tests/identity/ldap_directory.py: the admin device signs in as `bob` (`default_prefix
site_admins`), the sync devices as `alice` (`default_prefix synchronize_tables` and
`region-north`, her default group). The credential cache is off, so every request binds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_or_skip
from tests.identity.conftest import start_seeded_slapd
from tests.identity.ldap_directory import BASE_DN, PASSWORDS, READONLY_DN, READONLY_PASSWORD
from tests.services.device import run_conformance
from tests.services.server import ServerProcess
from tests.services.slapd import SlapdServer

ADMIN, USER = "bob", "alice"


class LdapServer(ServerProcess):
    """The real server; the suite's own SYNC_TEST_* variables are not server settings."""

    def env(self) -> dict[str, str]:
        env = super().env()
        for key in [k for k in env if k.startswith("SYNC_TEST_")]:
            del env[key]
        return env


@pytest.fixture
def directory() -> Iterator[SlapdServer]:
    server = start_seeded_slapd()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.conformance
def test_android_conformance_with_ldap(directory: SlapdServer, tmp_path: Path) -> None:
    """Every scenario passes when OpenLDAP decides who may sync and who may reset the server."""
    shared_or_skip("tools", "odkx-device", "odkx-device")
    server = LdapServer(
        tmp_path / "server",
        extra_env={
            "SYNC_IDENTITY_BACKEND": "ldap",
            "SYNC_LDAP_URL": directory.url,
            "SYNC_BASE_DN": BASE_DN,
            "SYNC_LDAP_BIND_DN": READONLY_DN,
            "SYNC_LDAP_BIND_PASSWORD": READONLY_PASSWORD,
            "SYNC_CREDENTIAL_CACHE_SECONDS": "0",
        },
    )
    server.migrate()
    with server:
        result = run_conformance(
            server.url, "default", ADMIN, PASSWORDS[ADMIN], USER, PASSWORDS[USER]
        )
        log = server.log_tail()
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, f"the simulator printed nothing; server log:\n{log}"
    assert lines[-1].endswith(" 0 failed"), f"{output[-4000:]}\nserver log:\n{log}"
    assert result.returncode == 0, output[-4000:]
    assert "AUTH_LDAP" in output  # the roles the sync user reported came from the directory
    assert "unavailable" not in log, log
