"""Run the real server as a subprocess so black-box tests exercise exactly what ships."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.services.postgres import free_port
from tests.services.process import terminate

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """`python -m sync_endpoint` driven through its CLI, configured only by environment."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        database_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.extra_env = dict(extra_env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        """Same environment for every CLI call so migrate/users/serve see one database."""
        env = dict(os.environ)
        env["SYNC_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["SYNC_DATABASE_URL"] = self.database_url
        else:
            env.pop("SYNC_DATABASE_URL", None)  # default: SQLite inside the data dir
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one CLI command; raise with its output so failures are readable in pytest."""
        r = subprocess.run(
            [sys.executable, "-m", "sync_endpoint", *args],
            cwd=REPO_ROOT,
            env=self.env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise RuntimeError(
                f"sync_endpoint {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}"
            )
        return r

    def migrate(self) -> None:
        """Apply the schema before serving, as an operator would."""
        self.cli("migrate")

    def add_user(self, name: str, password: str, groups: Iterable[str]) -> None:
        """Create a user; password goes via stdin so it never shows in `ps`."""
        args = ["users", "add", name, "--password-stdin"]
        for g in groups:
            args += ["--group", g]
        self.cli(*args, stdin=password)  # no newline: works with read() and readline()

    @property
    def url(self) -> str:
        """Base URL for clients (the device simulator, aiohttp sessions)."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        """Last lines of the server log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 30.0) -> None:
        """Start `serve` on a free port and wait until /health answers 200."""
        self.port = free_port()
        cmd = [sys.executable, "-m", "sync_endpoint", "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        code = self.proc.poll()
        self.stop()
        raise RuntimeError(
            f"server not healthy on {self.url} (exit code {code}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM for a graceful shutdown; kill if it hangs so tests never stall."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGTERM, timeout=10)
            self.proc = None

    def __enter__(self) -> ServerProcess:
        """Context-manager use guarantees the process is stopped."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on any exit path."""
        self.stop()
