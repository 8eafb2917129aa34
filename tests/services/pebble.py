"""A throwaway ACME CA: Debian's pebble with pebble-challtestsrv as its DNS (TEST_SERVICES.md §4).

pebble's validation authority fetches `http://<domain>:<httpPort>/.well-known/acme-challenge/…`,
so `http_port` must be the port of the nginx that serves the certbot webroot. challtestsrv
answers every DNS name with 127.0.0.1 (and no AAAA), so any test domain resolves to loopback.
Debian's pebble ships no TLS certificate for its own HTTPS listener: one is made with openssl,
and certbot trusts it through REQUESTS_CA_BUNDLE (`ca_bundle`).

`PEBBLE_VA_NOSLEEP=1` removes the random 0-15 s sleep before each validation and
`PEBBLE_WFE_NONCEREJECT=0` stops pebble from rejecting 5 % of valid nonces, which certbot
2.1.0 reports as an obscure AttributeError. `PEBBLE_AUTHZREUSE=0` makes every order validate
afresh (by default pebble reuses a valid authorization half of the time), so a renewal is
always an HTTP-01 request through the nginx under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.services.postgres import free_port

PEBBLE = "pebble"
CHALLTESTSRV = "pebble-challtestsrv"
CERTBOT = "certbot"


def pebble_missing() -> str | None:
    """Why pebble + certbot cannot run here, or None when they can."""
    for tool in (PEBBLE, CHALLTESTSRV, CERTBOT, "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Debian packages pebble and certbot; scripts/bootstrap)"
    return None


def require_pebble_or_skip() -> None:
    """Skip without pebble/certbot, except under CI where that is a failure."""
    import pytest

    reason = pebble_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true" or os.environ.get("SYNC_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"pebble and certbot are required under CI: {reason}")
    pytest.skip(reason)


class PebbleServer:
    """pebble (ACME directory on a loopback port) plus challtestsrv (fake DNS) in a temp dir."""

    def __init__(self, http_port: int) -> None:
        self.http_port = http_port
        self.tmp = Path(tempfile.mkdtemp(prefix="sync-pebble-"))
        self.acme_port = 0
        self.management_port = 0
        self.dns_port = 0
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def ca_bundle(self) -> Path:
        """The certificate of pebble's own HTTPS listeners (not the issuing CA)."""
        return self.tmp / "pebble-cert.pem"

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def start(self, timeout: float = 20.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        t = self.tmp
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", str(t / "pebble-key.pem"), "-out", str(self.ca_bundle), "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.acme_port, self.management_port = free_port(), free_port()
        self.dns_port, dns_management = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.ca_bundle),
                "privateKey": str(t / "pebble-key.pem"),
                "httpPort": self.http_port,
                "tlsPort": free_port(),  # TLS-ALPN-01 is not used; any unused port
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (t / "pebble-config.json").write_text(json.dumps(config), encoding="utf-8")
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        self._spawn(
            "challtestsrv",
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns_port}",
             "-management", f"127.0.0.1:{dns_management}", "-defaultIPv4", "127.0.0.1",
             "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", ""],
            env,
        )  # fmt: skip
        self._spawn(
            "pebble",
            [PEBBLE, "-config", str(t / "pebble-config.json"),
             "-dnsserver", f"127.0.0.1:{self.dns_port}", "-strict=false"],
            env,
        )  # fmt: skip
        self._wait_ready(timeout)

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with open(self.tmp / f"{name}.log", "ab") as log:  # the child keeps its own fd
            self.procs.append(
                subprocess.Popen(
                    args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                break
            try:
                with urllib.request.urlopen(
                    self.directory_url, timeout=2, context=self._ssl_context()
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"pebble did not start:\n{self.logs()}")

    def root_certificate(self) -> str:
        """PEM of the root that pebble signs certificates with (management port, /roots/0)."""
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, timeout=10, context=self._ssl_context()) as response:
            return str(response.read().decode("ascii"))

    def logs(self) -> str:
        parts = []
        for name in ("challtestsrv", "pebble"):
            path = self.tmp / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM both, wait for them (no zombies), remove the temp dir."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PebbleServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
