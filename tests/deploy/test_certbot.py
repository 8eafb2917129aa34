"""HTTPS issuance and renewal end to end: certbot, our nginx and pebble as the ACME CA.

The procedure of docs/deploy.md §6, on loopback (TEST_SERVICES.md §4; DEPLOYMENT.md §3, §11
items 15-20): the plain-HTTP template serves the ACME webroot on the port pebble validates
(its `httpPort`); `certbot certonly --webroot` obtains the first certificate through it; the
HTTPS template, rendered with CERT_DIR = certbot's live directory, then serves that
certificate while its port 80 keeps serving the same webroot; `certbot renew` is a no-op while
the certificate is fresh, a forced renewal goes through the HTTPS stack's port 80, and a
reload (what the stack's nginx does every 12 h) serves the renewed certificate.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.deploy.conftest import DeployServer
from tests.services.nginx import NginxServer, require_nginx_or_skip
from tests.services.pebble import PebbleServer, require_pebble_or_skip
from tests.services.postgres import free_port

DOMAIN = "odkx.example.test"  # challtestsrv resolves every name to 127.0.0.1
EMAIL = "ops@odkx.example.test"


@dataclass
class Acme:
    pebble: PebbleServer
    webroot: Path
    certbot_dir: Path
    http_port: int
    upstream: str
    issue: subprocess.CompletedProcess[str] | None = None
    access_log: str = ""

    @property
    def live(self) -> Path:
        return self.certbot_dir / "config" / "live" / DOMAIN

    def certbot(self, *args: str) -> subprocess.CompletedProcess[str]:
        """certbot with every directory in the temp dir, trusting pebble's HTTPS listener."""
        d = self.certbot_dir
        return subprocess.run(
            ["certbot", *args, "--non-interactive",
             "--config-dir", str(d / "config"), "--work-dir", str(d / "work"),
             "--logs-dir", str(d / "logs")],
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(self.pebble.ca_bundle)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def acme(deploy_server: DeployServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acme]:
    """pebble running, and a certificate issued through the plain-HTTP template's webroot."""
    require_nginx_or_skip()
    require_pebble_or_skip()
    base = tmp_path_factory.mktemp("acme")
    webroot = base / "certbot-www"
    http_port = free_port()
    upstream = f"127.0.0.1:{deploy_server.port}"
    with PebbleServer(http_port) as pebble:
        acme = Acme(pebble, webroot, base / "certbot", http_port, upstream)
        nginx = NginxServer(
            {"SYNC_UPSTREAM": upstream, "SERVER_NAME": DOMAIN, "CLIENT_MAX_BODY_SIZE": "100m"},
            webroot=webroot,
        )
        nginx.http_port = http_port
        with nginx:
            acme.issue = acme.certbot(
                "certonly", "--server", pebble.directory_url, "--agree-tos", "--no-eff-email",
                "-m", EMAIL, "--webroot", "-w", str(webroot), "-d", DOMAIN,
            )  # fmt: skip
            acme.access_log = nginx.access_log()
        yield acme


@pytest.fixture(scope="module")
def https_nginx(acme: Acme) -> Iterator[NginxServer]:
    """The HTTPS template on the certificate certbot issued; its port 80 is pebble's httpPort."""
    assert acme.issue is not None
    assert acme.issue.returncode == 0, acme.issue.stdout + acme.issue.stderr
    values = {
        "SYNC_UPSTREAM": acme.upstream,
        "SERVER_NAME": DOMAIN,
        "CLIENT_MAX_BODY_SIZE": "100m",
        "CERT_DIR": str(acme.live),
    }
    nginx = NginxServer(values, https=True, webroot=acme.webroot)
    nginx.http_port = acme.http_port
    with nginx:
        yield nginx


def served_certificate(port: int, root_pem: str) -> tuple[x509.Certificate, str]:
    """Handshake with `DOMAIN` as SNI, verifying against pebble's root; the leaf and /health."""
    context = ssl.create_default_context(cadata=root_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET /health HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    return x509.load_der_x509_certificate(der), response.decode("latin-1")


def issued_certificate(acme: Acme) -> x509.Certificate:
    return x509.load_pem_x509_certificate((acme.live / "cert.pem").read_bytes())


def test_certbot_issues_through_our_nginx(acme: Acme) -> None:
    """certbot --webroot gets a certificate; pebble validated it through our nginx's ACME path."""
    assert acme.issue is not None
    assert acme.issue.returncode == 0, acme.issue.stdout + acme.issue.stderr
    for name in ("fullchain.pem", "privkey.pem", "cert.pem", "chain.pem"):
        assert (acme.live / name).is_file(), name
    names = issued_certificate(acme).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [DOMAIN]
    validations = [
        line for line in acme.access_log.splitlines()
        if "/.well-known/acme-challenge/" in line and "Pebble-VA" in line
    ]  # fmt: skip
    assert validations, acme.access_log
    assert all('" 200 ' in line for line in validations), validations
    renewal = (acme.certbot_dir / "config" / "renewal" / f"{DOMAIN}.conf").read_text()
    assert "authenticator = webroot" in renewal


def test_https_template_serves_the_issued_certificate(acme: Acme, https_nginx: NginxServer) -> None:
    """nginx serves certbot's fullchain: the chain verifies against pebble's root."""
    leaf, response = served_certificate(https_nginx.https_port, acme.pebble.root_certificate())
    assert leaf.serial_number == issued_certificate(acme).serial_number
    assert response.startswith("HTTP/1.1 200")
    assert "Strict-Transport-Security: max-age=31536000" in response


def test_renew_is_idempotent_and_a_renewal_is_picked_up(
    acme: Acme, https_nginx: NginxServer
) -> None:
    """`certbot renew` skips a fresh certificate; a forced renewal passes and a reload serves it."""
    renew_args = ["renew", "--webroot", "-w", str(acme.webroot)]
    first = acme.certbot(*renew_args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "not due for renewal" in first.stdout + first.stderr
    before = issued_certificate(acme).serial_number

    # `renew` sleeps up to 8 minutes before a non-interactive renewal; not in a test.
    forced = acme.certbot(*renew_args, "--force-renewal", "--no-random-sleep-on-renew")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    renewed = issued_certificate(acme).serial_number
    assert renewed != before
    # The HTTP-01 validation of the renewal went through the HTTPS config's port 80.
    assert "Pebble-VA" in https_nginx.access_log()

    root = acme.pebble.root_certificate()
    assert served_certificate(https_nginx.https_port, root)[0].serial_number == before
    https_nginx.reload()  # the stack's nginx runs `nginx -s reload` every 12 h
    deadline = time.monotonic() + 10  # the master re-reads, new workers take over
    while time.monotonic() < deadline:
        if served_certificate(https_nginx.https_port, root)[0].serial_number == renewed:
            break
        time.sleep(0.1)
    assert served_certificate(https_nginx.https_port, root)[0].serial_number == renewed
