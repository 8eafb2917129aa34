"""Fixtures of the deployment tests: one real server process for every proxy test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.server import ServerProcess

PASSWORDS = {"admin": "admin-pw", "tester": "tester-pw"}


class DeployServer(ServerProcess):
    """The real server with default settings: no SYNC_* from the suite's environment.

    Only its data dir (SQLite inside it) is set, so it trusts X-Forwarded-* from its default
    proxies (127.0.0.1, ::1) and builds URLs from the request, as behind the stack's nginx.
    """

    def env(self) -> dict[str, str]:
        env = super().env()
        for key in [k for k in env if k.startswith("SYNC_") and k != "SYNC_DATA_DIR"]:
            del env[key]
        return env


@pytest.fixture(scope="package")
def deploy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployServer]:
    """The real server on SQLite with an admin and a plain sync user, shared by the package."""
    process = DeployServer(tmp_path_factory.mktemp("deploy-server"))
    process.migrate()
    process.add_user("admin", PASSWORDS["admin"], ["site_admins"])
    process.add_user("tester", PASSWORDS["tester"], ["synchronize_tables"])
    with process:
        yield process
