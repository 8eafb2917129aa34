"""Fixtures of the identity tests: a real slapd seeded with tests/identity/ldap_directory.py."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync_endpoint.identity.ldap import LdapIdentityProvider
from sync_endpoint.settings import Secret, Settings
from tests.identity.ldap_directory import BASE_DN, READONLY_DN, READONLY_PASSWORD, directory_ldif
from tests.services.slapd import SlapdServer, SlapdTls, require_slapd_or_skip


def start_seeded_slapd(tls: SlapdTls | None = None) -> SlapdServer:
    """A new slapd holding the test directory (loaded offline with slapadd -n 1)."""
    require_slapd_or_skip()
    server = SlapdServer(tls=tls)
    with tempfile.NamedTemporaryFile("w", suffix=".ldif", delete=False) as out:
        out.write(directory_ldif())
    try:
        server.start(data=Path(out.name))
    finally:
        Path(out.name).unlink()
    return server


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """One shared, read-only slapd for the tests that do not stop or change it."""
    server = start_seeded_slapd()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_slapd() -> Iterator[SlapdServer]:
    """A slapd of the test's own, for tests that pause, stop or restart it."""
    server = start_seeded_slapd()
    try:
        yield server
    finally:
        server.stop()


def ldap_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "identity_backend": "ldap",
        "ldap_url": url,
        "base_dn": BASE_DN,
        "ldap_bind_dn": READONLY_DN,
        "ldap_bind_password": Secret(READONLY_PASSWORD),
        "ldap_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def ldap_provider(slapd: SlapdServer) -> Any:
    provider = LdapIdentityProvider.from_settings(ldap_settings(slapd.url))
    yield provider
    await provider.close()
