"""The LDAP backend over TLS against a real slapd with a throw-away CA (docs/identity.md "TLS"):
ldaps:// and StartTLS verify the directory's certificate and host name, and every TLS failure
is a 503 before any password is sent, never a plaintext fallback (IDENTITY.md §3.2, §7; D13)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync_endpoint.app import create_app
from sync_endpoint.errors import ServiceUnavailable
from sync_endpoint.identity.ldap import LdapIdentityProvider
from sync_endpoint.settings import Secret
from tests.conftest import make_settings
from tests.identity.conftest import ldap_settings, start_seeded_slapd
from tests.identity.ldap_directory import BASE_DN, READONLY_DN, READONLY_PASSWORD
from tests.services.slapd import SlapdServer, SlapdTls, require_slapd_or_skip

ALICE_DN = f"uid=alice,ou=people,{BASE_DN}"
MODES = ["ldaps", "starttls"]

# -- a throw-away PKI ------------------------------------------------------------------------

Key = ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _builder(subject: str, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def make_ca(common_name: str) -> tuple[Key, x509.Certificate]:
    """A self-signed CA (P-256) that may sign server certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: Key, ca_cert: x509.Certificate, dns: list[str], ips: list[str]
) -> tuple[Key, x509.Certificate]:
    """A TLS server certificate for the given names, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        _builder((dns or ips)[0], ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_pem(path: Path, cert: x509.Certificate, key: Key | None = None) -> Path:
    """The certificate as PEM; with `key`, that key unencrypted beside it (GnuTLS needs that)."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # signed both server certificates
    other_ca_file: Path  # signed nothing slapd serves
    server: SlapdTls  # for 127.0.0.1 and localhost
    wrong_name: SlapdTls  # for ldap.example.org only


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = make_ca("sync-endpoint test CA")
    _, other_cert = make_ca("sync-endpoint test CA")  # same name, different key
    ca_file = write_pem(folder / "ca.pem", ca_cert)
    tls = {}
    for label, dns, ips in (
        ("server", ["localhost"], ["127.0.0.1"]),
        ("wrong-name", ["ldap.example.org"], []),
    ):
        key, cert = make_server_cert(ca_key, ca_cert, dns, ips)
        pem = write_pem(folder / f"{label}.pem", cert, key)
        tls[label] = SlapdTls(ca_file, pem, pem.with_suffix(".key"))
    return Pki(
        ca_file, write_pem(folder / "other-ca.pem", other_cert), tls["server"], tls["wrong-name"]
    )


@pytest.fixture(scope="module")
def tls_slapd(pki: Pki) -> Iterator[SlapdServer]:
    """The test directory served over StartTLS and ldaps:// with the CA's certificate."""
    server = start_seeded_slapd(tls=pki.server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def wrong_name_slapd(pki: Pki) -> Iterator[SlapdServer]:
    """An empty slapd whose certificate (from the right CA) names another host."""
    require_slapd_or_skip()
    server = SlapdServer(tls=pki.wrong_name)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- helpers ---------------------------------------------------------------------------------


def tls_provider(slapd: SlapdServer, mode: str, ca_file: Path | None) -> LdapIdentityProvider:
    """ldaps:// on the TLS port, or StartTLS on the ldap:// port."""
    url = slapd.ldaps_url if mode == "ldaps" else slapd.url
    settings = ldap_settings(url, ldap_start_tls=mode == "starttls", ldap_ca_file=ca_file)
    return LdapIdentityProvider.from_settings(settings)


def record_binds(provider: LdapIdentityProvider) -> list[tuple[str, bool]]:
    """Every bind the provider sends, as (DN, whether the connection was encrypted by then)."""
    directory = provider.directory
    binds: list[tuple[str, bool]] = []
    original = directory._connection

    def connection(user: str, password: str) -> Any:
        conn = original(user, password)
        bind = conn.bind

        def recorded_bind(*args: Any, **kwargs: Any) -> Any:
            binds.append((user, bool(conn.server.ssl or conn.tls_started)))
            return bind(*args, **kwargs)

        conn.bind = recorded_bind
        return conn

    directory._connection = connection  # type: ignore[method-assign]
    return binds


async def assert_unavailable(provider: LdapIdentityProvider) -> None:
    """Login, the user list and /ready's probe all raise ServiceUnavailable (503)."""
    with pytest.raises(ServiceUnavailable):
        await provider.authenticate("alice", "s3cret")
    with pytest.raises(ServiceUnavailable):
        await provider.list_users()
    with pytest.raises(ServiceUnavailable):
        await provider.ping()


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_login_over_tls_with_the_ca_file(tls_slapd: SlapdServer, pki: Pki, mode: str) -> None:
    """With SYNC_LDAP_CA_FILE, login, user list and ping work and every bind is encrypted."""
    provider = tls_provider(tls_slapd, mode, pki.ca_file)
    binds = record_binds(provider)
    try:
        principal = await provider.authenticate("alice", "s3cret")
        assert principal is not None
        assert "ROLE_SYNCHRONIZE_TABLES" in principal.authorities
        assert principal.default_group == "GROUP_REGION_NORTH"
        assert await provider.authenticate("alice", "wrong") is None  # still 401, not 503
        assert "username:bob" in {u.user_id for u in await provider.list_users()}
        await provider.ping()
    finally:
        await provider.close()
    assert {dn for dn, _ in binds} == {ALICE_DN, READONLY_DN}
    assert all(encrypted for _, encrypted in binds), binds


@pytest.mark.parametrize("mode", MODES)
async def test_untrusted_certificate_is_503_without_plaintext(
    tls_slapd: SlapdServer, pki: Pki, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A CA that did not sign the server's certificate: 503, and no bind is ever sent."""
    provider = tls_provider(tls_slapd, mode, pki.other_ca_file)
    binds = record_binds(provider)
    try:
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            await assert_unavailable(provider)
    finally:
        await provider.close()
    assert binds == []
    assert "TLS handshake failed" in caplog.text
    assert "certificate verify failed" in caplog.text
    assert "SYNC_LDAP_CA_FILE" in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("mode", MODES)
async def test_system_cas_do_not_trust_a_private_ca(
    tls_slapd: SlapdServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without SYNC_LDAP_CA_FILE the system CAs decide: verification is never switched off."""
    provider = tls_provider(tls_slapd, mode, None)
    binds = record_binds(provider)
    try:
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            await assert_unavailable(provider)
    finally:
        await provider.close()
    assert binds == []
    assert "certificate verify failed" in caplog.text


@pytest.mark.parametrize("mode", MODES)
async def test_certificate_for_another_host_is_503(
    wrong_name_slapd: SlapdServer, pki: Pki, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate from the trusted CA but for ldap.example.org does not do for 127.0.0.1."""
    provider = tls_provider(wrong_name_slapd, mode, pki.ca_file)
    binds = record_binds(provider)
    try:
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            await assert_unavailable(provider)
    finally:
        await provider.close()
    assert binds == []
    assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in caplog.text


async def test_start_tls_against_a_directory_without_tls_is_503(
    slapd: SlapdServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """SYNC_LDAP_START_TLS=true and a slapd without a certificate: 503 and a log line naming
    StartTLS, never a plaintext bind."""
    provider = LdapIdentityProvider.from_settings(
        ldap_settings(slapd.url, ldap_start_tls=True, ldap_ca_file=pki.ca_file)
    )
    binds = record_binds(provider)
    try:
        with caplog.at_level(logging.ERROR, logger="sync_endpoint.identity.ldap"):
            await assert_unavailable(provider)
    finally:
        await provider.close()
    assert binds == []
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines, "no log line"
    assert all(slapd.url in line and "SYNC_LDAP_START_TLS=true" in line for line in lines), lines
    assert "StartTLS (SYNC_LDAP_START_TLS=true) refused by the directory" in lines[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_http_answers_over_ldaps(
    aiohttp_client: Any, tmp_path: Path, database_url: str, tls_slapd: SlapdServer, pki: Pki
) -> None:
    """Through the app: privilegesInfo 200 with the right CA; 503 with Retry-After otherwise."""
    token = base64.b64encode(b"alice:s3cret").decode()
    headers = {"X-OpenDataKit-Version": "2.0", "Authorization": f"Basic {token}"}
    for ca_file, status in ((pki.ca_file, 200), (pki.other_ca_file, 503)):
        data_dir = tmp_path / f"data-{status}"
        data_dir.mkdir()
        settings = make_settings(
            data_dir, database_url, identity_backend="ldap", ldap_url=tls_slapd.ldaps_url,
            base_dn=BASE_DN, ldap_bind_dn=READONLY_DN,
            ldap_bind_password=Secret(READONLY_PASSWORD), ldap_ca_file=ca_file,
        )  # fmt: skip
        client = await aiohttp_client(create_app(settings))
        response = await client.get("/odktables/default/privilegesInfo", headers=headers)
        assert response.status == status, await response.text()
        assert (await client.get("/ready")).status == status
        if status == 200:
            assert (await response.json())["user_id"] == "username:alice"
        else:
            assert "Retry-After" in response.headers
