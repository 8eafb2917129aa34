"""A throwaway nginx (Debian's package) serving our own site templates, for deployment tests.

The templates in nginx/ are rendered with nginx/render.py exactly as scripts/init renders them.
Only three things that are fixed for a real host are then changed for a test
(TEST_SERVICES.md §3): the listen lines (ports 80/443 become free loopback ports), the ACME
webroot (/var/www/certbot becomes a directory in the temp dir) and nothing else. Each change
must match the template exactly as often as expected, so a template edit that the test no
longer understands fails loudly instead of testing something else.

The rendered site is a conf.d snippet (it sits inside nginx's `http` block), so a small main
nginx.conf around it sets the pid file, the logs and the five temp paths inside the temp dir.
Workers run as root (`user root;`): the temp dir from `tempfile.mkdtemp` is 0700, which workers
running as `nobody` could not read (TEST_SERVICES.md §0, §3).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.services.postgres import free_port
from tests.services.process import terminate

REPO_ROOT = Path(__file__).resolve().parents[2]
RENDER = REPO_ROOT / "nginx" / "render.py"
HTTP_TEMPLATE = REPO_ROOT / "nginx" / "sync-endpoint.conf.template"
HTTPS_TEMPLATE = REPO_ROOT / "nginx" / "sync-endpoint-https.conf.template"
WEBROOT = "/var/www/certbot"


def nginx_binary() -> str | None:
    """Path of the nginx binary (Debian puts it in /usr/sbin, which may be off PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def require_nginx_or_skip() -> str:
    """The nginx binary; skip without it, except under CI where that is a failure."""
    import pytest

    binary = nginx_binary()
    if binary is not None:
        return binary
    reason = "nginx is not installed (Debian package nginx; scripts/bootstrap installs it)"
    if os.environ.get("CI") == "true" or os.environ.get("SYNC_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"nginx is required under CI: {reason}")
    pytest.skip(reason)


def render_template(template: Path, values: Mapping[str, str]) -> str:
    """Render a template with the project's own nginx/render.py command line."""
    args = [sys.executable, str(RENDER), str(template), "-"]
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"render.py failed ({result.returncode}): {result.stderr}")
    return result.stdout


def _replace(text: str, old: str, new: str, count: int) -> str:
    found = text.count(old)
    if found != count:
        raise AssertionError(f"expected {count} occurrence(s) of {old!r} in the template: {found}")
    return text.replace(old, new)


class NginxServer:
    """nginx on loopback ports with one of our site templates, in its own temp dir.

    `values` are the template placeholders (SYNC_UPSTREAM, SERVER_NAME, CLIENT_MAX_BODY_SIZE,
    CERT_DIR). `https=True` selects the HTTPS template, which then listens on `https_port` too.
    """

    def __init__(
        self, values: Mapping[str, str], https: bool = False, webroot: Path | None = None
    ) -> None:
        self.values = dict(values)
        self.https = https
        self.template = HTTPS_TEMPLATE if https else HTTP_TEMPLATE
        self.tmp = Path(tempfile.mkdtemp(prefix="sync-nginx-"))
        # The ACME webroot; pass one to share it between two nginx instances (HTTP, then HTTPS).
        self.webroot = webroot if webroot is not None else self.tmp / "www"
        self.http_port = 0
        self.https_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = nginx_binary() or "nginx"

    # -- configuration ---------------------------------------------------------------------

    def site_config(self) -> str:
        """The rendered template with the test's ports and webroot."""
        text = render_template(self.template, self.values)
        text = _replace(
            text,
            "listen 80 default_server;",
            f"listen 127.0.0.1:{self.http_port} default_server;",
            1,
        )
        if self.https:
            text = _replace(
                text,
                "listen 443 ssl default_server;",
                f"listen 127.0.0.1:{self.https_port} ssl default_server;",
                1,
            )
        roots = 2 if self.https else 1
        return _replace(text, f"root {WEBROOT};", f"root {self.webroot};", roots)

    def main_config(self) -> str:
        t = self.tmp
        return f"""user root;
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {t}/logs/access.log;
    client_body_temp_path {t}/tmp/body;
    proxy_temp_path {t}/tmp/proxy;
    fastcgi_temp_path {t}/tmp/fastcgi;
    uwsgi_temp_path {t}/tmp/uwsgi;
    scgi_temp_path {t}/tmp/scgi;
    include {t}/site.conf;
}}
"""

    def write_config(self) -> None:
        for sub in ("logs", "tmp"):
            (self.tmp / sub).mkdir(parents=True, exist_ok=True)
        (self.webroot / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
        (self.tmp / "site.conf").write_text(self.site_config(), encoding="utf-8")
        (self.tmp / "nginx.conf").write_text(self.main_config(), encoding="utf-8")

    def _nginx(self, *args: str) -> list[str]:
        t = self.tmp
        log, conf = str(t / "logs" / "error.log"), str(t / "nginx.conf")
        return [self.binary, "-p", str(t), "-e", log, "-c", conf, *args]

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Render, check (`nginx -t`) and start nginx in the foreground; wait for its ports."""
        try:
            if not self.http_port:
                self.http_port = free_port()
            if self.https and not self.https_port:
                self.https_port = free_port()
            self.write_config()
            check = subprocess.run(
                self._nginx("-t", "-q"), capture_output=True, text=True, timeout=30, check=False
            )
            if check.returncode != 0:
                raise RuntimeError(f"nginx -t rejected the rendered config:\n{check.stderr}")
            with open(self.tmp / "logs" / "stderr.log", "ab") as log:
                self.proc = subprocess.Popen(
                    self._nginx("-g", "daemon off;"),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        ports = [self.http_port] + ([self.https_port] if self.https else [])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                for port in ports:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start on {ports}:\n{self.error_log()}")

    def reload(self) -> None:
        """SIGHUP: re-read the configuration and the certificate files (as `nginx -s reload`)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def error_log(self) -> str:
        parts = []
        for name in ("error.log", "stderr.log"):
            path = self.tmp / "logs" / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def access_log(self) -> str:
        path = self.tmp / "logs" / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGQUIT (graceful), SIGKILL if it hangs; then remove the temp dir."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGQUIT, timeout=10)
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> NginxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_certificate(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """fullchain.pem and privkey.pem for `name` and 127.0.0.1, made by openssl (2 days)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "privkey.pem", directory / "fullchain.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
