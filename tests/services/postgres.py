"""Throwaway PostgreSQL cluster so tests never depend on a pre-configured database server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.services.process import terminate

ENV_URL = "SYNC_TEST_DATABASE_URL"


def postgres_url_from_env() -> str | None:
    """Let CI or a developer point the tests at an existing server instead of starting one."""
    return os.environ.get(ENV_URL) or None


def free_port() -> int:
    """Ask the kernel for an unused port so parallel runs do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir() -> Path:
    """Pick the newest installed major version; Debian does not put initdb on PATH."""
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    if not dirs:
        raise RuntimeError("PostgreSQL not installed (run scripts/bootstrap)")
    return Path(max(dirs, key=lambda d: int(Path(d).parent.name.split(".")[0])))


class PostgresCluster:
    """A private cluster in a temp dir, run as the postgres user because initdb refuses root."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = 0
        self.tmp: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self._as: dict[str, Any] = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self._owner: tuple[int, int] | None = (pw.pw_uid, pw.pw_gid)
        else:
            self._as, self._owner = {}, None

    @property
    def log_path(self) -> Path:
        """Where the server logs go, so failures can show the tail."""
        assert self.tmp is not None
        return self.tmp / "postgres.log"

    def _run(self, *args: str) -> None:
        """Run a client binary as the cluster owner and surface its stderr on failure."""
        r = subprocess.run(
            [str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, **self._as
        )
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stdout}{r.stderr}")

    def _log_tail(self, n: int = 40) -> str:
        """Last lines of the server log for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 30.0) -> None:
        """initdb + postgres with durability off: tests want speed, not crash safety."""
        # Directly under /tmp: pytest's tmp_path is 0700 root, unreadable by postgres.
        self.tmp = Path(tempfile.mkdtemp(prefix="sync-pg-", dir="/tmp"))
        if self._owner:
            os.chown(self.tmp, *self._owner)
        data = self.tmp / "data"
        self._run(
            "initdb", "-D", str(data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        self.port = free_port()
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [
                    str(self.bin / "postgres"), "-D", str(data), "-k", str(self.tmp),
                    "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                    "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=200",
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **self._as,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"PostgreSQL did not become ready on port {self.port}:\n{tail}")

    def create_database(self, name: str) -> str:
        """One database per test (or module) keeps tests isolated without new clusters."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """SIGINT is 'fast shutdown'; SIGTERM would wait for leaked test connections."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGINT, timeout=30)
            self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> PostgresCluster:
        """Context-manager use guarantees the temp dir is removed."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on any exit path."""
        self.stop()


def _self_check() -> None:
    """Pytest-free smoke test: start, create a db, select 1, stop."""
    import psycopg

    with PostgresCluster() as pg:
        url = pg.create_database("selfcheck")
        with psycopg.connect(url.replace("+psycopg", "", 1)) as conn:
            row = conn.execute("select 1").fetchone()
            assert row == (1,), row
        print(f"ok: {url} answered select 1")
    assert pg.tmp is None


if __name__ == "__main__":
    _self_check()
