"""Our nginx templates in front of the real server (DEPLOYMENT.md §2, §11 items 11-16; D15).

A real nginx (Debian's package) serves nginx/sync-endpoint.conf.template and
nginx/sync-endpoint-https.conf.template, rendered by nginx/render.py with only the ports and
the ACME webroot changed for the test (tests/services/nginx.py), in front of the real server
process on SQLite. The server keeps its default trusted proxies, which include 127.0.0.1, the
address nginx connects from. Requests are plain `http.client` calls, so every header on the
wire is the one under test.
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_or_skip
from tests.deploy.conftest import PASSWORDS, DeployServer
from tests.helpers import CENSUS_COLUMNS, ODK, row
from tests.services.device import run_conformance
from tests.services.nginx import NginxServer, require_nginx_or_skip, self_signed_certificate

URL_FIELDS = ("selfUri", "definitionUri", "dataUri", "instanceFilesUri", "diffUri", "aclUri")
MB = 1024 * 1024


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        data = self.body
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return json.loads(data)

    @property
    def from_server(self) -> bool:
        """The sync server answered (nginx's own answers lack the ODK-X version header)."""
        return self.headers.get("X-OpenDataKit-Version") == "2.0"


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    user: str | None = "admin",
    tls: ssl.SSLContext | None = None,
    chunked: bool = False,
) -> Reply:
    """One request on a fresh connection; `chunked` sends the body with Transfer-Encoding."""
    send = dict(ODK)
    if user is not None:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        send["Authorization"] = f"Basic {token}"
    send.update(headers or {})
    conn: HTTPConnection
    if tls is not None:
        conn = HTTPSConnection("127.0.0.1", port, timeout=60, context=tls)
    else:
        conn = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=send, encode_chunked=chunked)
        response = conn.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        conn.close()


def gzip_json(value: Any) -> Iterator[bytes]:
    """A gzip-compressed JSON body in 8 kB pieces, as Android streams it (no Content-Length)."""
    data = gzip.compress(json.dumps(value).encode())
    return iter([data[i : i + 8192] for i in range(0, len(data), 8192)])


GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def create_table(port: int, tls: ssl.SSLContext | None = None, **headers: str) -> dict[str, Any]:
    """PUT a new table through nginx with a gzip + chunked body; return its resource."""
    table_id = f"t_{uuid.uuid4().hex[:10]}"
    body = {"tableId": table_id, "schemaETag": None, "orderedColumns": CENSUS_COLUMNS}
    reply = call(
        port, "PUT", f"/odktables/default/tables/{table_id}", gzip_json(body),
        {**GZIP_JSON, **headers}, tls=tls, chunked=True,
    )  # fmt: skip
    assert reply.status == 200, reply.body[:500]
    resource: dict[str, Any] = reply.json()
    return resource


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def manifest_names(port: int) -> list[str]:
    reply = call(port, "GET", "/odktables/default/manifest/2")
    assert reply.status == 200
    return [f["filename"] for f in reply.json()["files"]]


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_nginx(deploy_server: DeployServer) -> Iterator[NginxServer]:
    """The plain-HTTP template with a 1m body limit."""
    require_nginx_or_skip()
    values = {
        "SYNC_UPSTREAM": f"127.0.0.1:{deploy_server.port}",
        "SERVER_NAME": "_",
        "CLIENT_MAX_BODY_SIZE": "1m",
    }
    with NginxServer(values) as nginx:
        yield nginx


@pytest.fixture(scope="module")
def https_nginx(deploy_server: DeployServer) -> Iterator[NginxServer]:
    """The HTTPS template with a self-signed certificate for localhost and 127.0.0.1."""
    require_nginx_or_skip()
    nginx = NginxServer(
        {"SYNC_UPSTREAM": f"127.0.0.1:{deploy_server.port}", "SERVER_NAME": "localhost",
         "CLIENT_MAX_BODY_SIZE": "100m"},
        https=True,
    )  # fmt: skip
    try:
        cert_dir = nginx.tmp / "certs"
        self_signed_certificate(cert_dir)
        nginx.values["CERT_DIR"] = str(cert_dir)
        nginx.start()
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture(scope="module")
def tls(https_nginx: NginxServer) -> ssl.SSLContext:
    """A client context that trusts only the test certificate (verification stays on)."""
    return ssl.create_default_context(cafile=str(https_nginx.tmp / "certs" / "fullchain.pem"))


# -- plain HTTP ------------------------------------------------------------------------------


def test_routes_api_and_health(http_nginx: NginxServer) -> None:
    """/health and /odktables/… reach the server; /nginx-health is nginx's own."""
    port = http_nginx.http_port
    health = call(port, "GET", "/health", user=None)
    assert (health.status, health.from_server) == (200, True)
    info = call(port, "GET", "/odktables/default/privilegesInfo")
    assert info.status == 200
    assert "ROLE_SITE_ACCESS_ADMIN" in info.json()["roles"]
    challenge = call(port, "GET", "/odktables/default/tables", user=None)
    assert challenge.status == 401
    assert challenge.headers["WWW-Authenticate"].startswith("Basic ")
    own = call(port, "GET", "/nginx-health", user=None)
    assert (own.status, own.body, own.from_server) == (200, b"ok\n", False)
    assert "nginx/" not in own.headers.get("Server", "")  # server_tokens off


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_limit_is_413_from_nginx(http_nginx: NginxServer, chunked: bool) -> None:
    """A 2 MB config-file upload over the 1m limit gets nginx's 413 and is never stored."""
    port = http_nginx.http_port
    name = f"assets/deploy-{uuid.uuid4().hex[:8]}.bin"
    data = b"\0" * (2 * MB)
    body: bytes | Iterator[bytes] = data
    if chunked:
        body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)])
    headers = {"Content-Type": "application/octet-stream"}
    reply = call(port, "POST", f"/odktables/default/files/2/{name}", body, headers, chunked=chunked)
    assert reply.status == 413
    assert not reply.from_server
    assert b"413 Request Entity Too Large" in reply.body
    assert name not in manifest_names(port)
    # Below the limit the same upload goes through.
    small = call(port, "POST", f"/odktables/default/files/2/{name}", data[: MB // 2], headers)
    assert small.status == 201, small.body
    assert name in manifest_names(port)


def test_gzip_chunked_push_passes_through(http_nginx: NginxServer) -> None:
    """A table created and rows pushed with gzip + chunked bodies, as Android sends them."""
    port = http_nginx.http_port
    table = create_table(port)
    rows = [row(name=f"person {i}", age=str(20 + i)) for i in range(50)]
    reply = call(
        port, "PUT", path_of(table["dataUri"]),
        gzip_json({"rows": rows, "dataETag": table["dataETag"]}), GZIP_JSON, chunked=True,
    )  # fmt: skip
    assert reply.status == 200, reply.body[:500]
    outcomes = reply.json()["rows"]
    assert [o["outcome"] for o in outcomes] == ["SUCCESS"] * 50
    pulled = call(port, "GET", path_of(table["dataUri"]))
    assert len(pulled.json()["rows"]) == 50


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}"])
def test_urls_follow_the_host_the_client_used(http_nginx: NginxServer, host: str) -> None:
    """Absolute URLs carry the scheme, host and port the client used, not the upstream's."""
    port = http_nginx.http_port
    host = host.format(port=port)
    table = create_table(port, Host=host)
    path = f"/odktables/default/tables/{table['tableId']}"
    resource = call(port, "GET", path, headers={"Host": host}).json()
    for field in URL_FIELDS:
        assert resource[field].startswith(f"http://{host}/odktables/default/"), field


def test_client_cannot_forge_forwarded_headers(http_nginx: NginxServer) -> None:
    """nginx replaces a client's X-Forwarded-Proto/-Host, so URLs stay what the client used."""
    port = http_nginx.http_port
    table = create_table(port)
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    reply = call(port, "GET", f"/odktables/default/tables/{table['tableId']}", headers=forged)
    assert reply.json()["selfUri"].startswith(f"http://127.0.0.1:{port}/")


def test_gzip_response_when_asked(http_nginx: NginxServer) -> None:
    """JSON comes gzip-compressed with Accept-Encoding: gzip, and plain without it."""
    port = http_nginx.http_port
    table = create_table(port)
    rows = [row(name=f"person {i}") for i in range(20)]
    pushed = call(
        port, "PUT", path_of(table["dataUri"]),
        gzip_json({"rows": rows, "dataETag": None}), GZIP_JSON, chunked=True,
    )  # fmt: skip
    assert pushed.status == 200
    url = path_of(table["dataUri"])
    compressed = call(port, "GET", url, headers={"Accept-Encoding": "gzip"})
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers.get("Vary", "")
    plain = call(port, "GET", url, headers={"Accept-Encoding": "identity"})
    assert plain.headers.get("Content-Encoding") is None
    assert compressed.json() == json.loads(plain.body)
    assert len(compressed.body) < len(plain.body)


def test_acme_challenge_served_from_webroot(http_nginx: NginxServer) -> None:
    """/.well-known/acme-challenge/ is served by nginx from the webroot, never proxied."""
    port = http_nginx.http_port
    token = http_nginx.webroot / ".well-known" / "acme-challenge" / "x"
    token.write_text("token-x.thumbprint")
    reply = call(port, "GET", "/.well-known/acme-challenge/x", user=None)
    assert (reply.status, reply.body) == (200, b"token-x.thumbprint")
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert not reply.from_server
    missing = call(port, "GET", "/.well-known/acme-challenge/absent", user=None)
    assert (missing.status, missing.from_server) == (404, False)


# -- HTTPS -----------------------------------------------------------------------------------


def test_http_redirects_to_https_except_acme(https_nginx: NginxServer) -> None:
    """Port 80 answers 301 to the https URL (path and query kept), but serves ACME files."""
    port = https_nginx.http_port
    reply = call(port, "GET", "/odktables/default/tables?cursor=abc", user=None)
    assert reply.status == 301
    assert reply.headers["Location"] == "https://127.0.0.1/odktables/default/tables?cursor=abc"
    (https_nginx.webroot / ".well-known/acme-challenge/t1").write_text("t1.key")
    acme = call(port, "GET", "/.well-known/acme-challenge/t1", user=None)
    assert (acme.status, acme.body) == (200, b"t1.key")
    assert call(port, "GET", "/nginx-health", user=None).status == 200


def test_plain_http_on_the_tls_port_redirects(https_nginx: NginxServer) -> None:
    """Plain HTTP sent to the TLS port is redirected to https on that port (nginx 497)."""
    reply = call(https_nginx.https_port, "GET", "/health", user=None)
    assert reply.status == 301
    assert reply.headers["Location"] == f"https://127.0.0.1:{https_nginx.https_port}/health"


def test_hsts_on_every_https_response(https_nginx: NginxServer, tls: ssl.SSLContext) -> None:
    """Strict-Transport-Security (one year) is on successes and on the server's 401."""
    port = https_nginx.https_port
    for user, status in (("admin", 200), (None, 401)):
        reply = call(port, "GET", "/odktables/default/tables", user=user, tls=tls)
        assert reply.status == status
        assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"


def _context(cafile: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    # Let the client offer old protocols, so a failure is the server's refusal.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = version
    context.maximum_version = version
    return context


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_12_and_13_accepted(https_nginx: NginxServer, version: str) -> None:
    """TLS 1.2 and TLS 1.3 handshakes succeed."""
    context = _context(https_nginx.tmp / "certs/fullchain.pem", ssl.TLSVersion[version])
    reply = call(https_nginx.https_port, "GET", "/health", user=None, tls=context)
    assert reply.status == 200


def test_tls_11_refused(https_nginx: NginxServer) -> None:
    """A client limited to TLS 1.1 fails the handshake: the server refuses the protocol."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1_1
        context = _context(https_nginx.tmp / "certs/fullchain.pem", ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        call(https_nginx.https_port, "GET", "/health", user=None, tls=context)
    deadline = time.monotonic() + 5  # nginx may log just after the client saw the alert
    while "unsupported protocol" not in https_nginx.error_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "unsupported protocol" in https_nginx.error_log()


def test_https_urls_name_the_public_https_address(
    https_nginx: NginxServer, tls: ssl.SSLContext
) -> None:
    """D15 end to end: behind TLS, a table's URLs start with https://127.0.0.1:<https port>."""
    port = https_nginx.https_port
    table = create_table(port, tls=tls)
    resource = call(port, "GET", f"/odktables/default/tables/{table['tableId']}", tls=tls).json()
    for field in URL_FIELDS:
        assert resource[field].startswith(f"https://127.0.0.1:{port}/odktables/default/"), field
    files = call(port, "GET", "/odktables/default/manifest/2", tls=tls).json()["files"]
    for entry in files:
        assert entry["downloadUrl"].startswith(f"https://127.0.0.1:{port}/"), entry


@pytest.mark.conformance
@pytest.mark.parametrize("scenario", ["a_reset_app_server", "h_wrong_password"])
def test_device_simulator_over_https(https_nginx: NginxServer, scenario: str) -> None:
    """The Android simulator resets the server and is refused a wrong password, over HTTPS."""
    # `--secure-auth-only` is the device default: Basic credentials only over https. The
    # simulator does not verify certificates (transport.py uses an unverified context), so the
    # self-signed certificate is accepted.
    shared_or_skip("tools", "odkx-device", "odkx-device")
    url = f"https://127.0.0.1:{https_nginx.https_port}"
    result = run_conformance(
        url, "default", "admin", PASSWORDS["admin"], "tester", PASSWORDS["tester"],
        extra_args=["-k", scenario, "--secure-auth-only"],
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert f"PASS {scenario}" in output, output[-4000:]
    assert result.returncode == 0, output[-4000:]
    assert '"Sync ' in https_nginx.access_log(), "the simulator did not go through nginx"
