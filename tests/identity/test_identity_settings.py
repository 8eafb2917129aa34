"""Identity settings (DEPLOYMENT §5.1 keys), start-up validation, backend selection and the
anonymous attachment flag (IDENTITY §10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sync_endpoint.core.roles import anonymous_authorities
from sync_endpoint.errors import ConfigError
from sync_endpoint.identity import open_identity_provider, open_login_throttle
from sync_endpoint.identity.activedirectory import ActiveDirectoryIdentityProvider
from sync_endpoint.identity.dhis2 import Dhis2IdentityProvider
from sync_endpoint.identity.file import FileIdentityProvider
from sync_endpoint.identity.ldap import LdapIdentityProvider
from sync_endpoint.identity.throttle import LoginThrottle
from sync_endpoint.settings import load_settings
from sync_endpoint.storage.engines import open_database
from sync_endpoint.storage.login_throttle import SqlLoginFailures

LDAP_OK = {"SYNC_IDENTITY_BACKEND": "ldap", "SYNC_LDAP_BIND_PASSWORD": "readonly"}
AD_OK = {**LDAP_OK, "SYNC_IDENTITY_BACKEND": "activedirectory", "SYNC_AD_DOMAIN": "corp.example"}
DHIS2_OK = {
    "SYNC_IDENTITY_BACKEND": "dhis2",
    "SYNC_DHIS2_API_URL": "https://dhis2.example.org/api/40/",
    "SYNC_DHIS2_ADMIN_USER": "admin",
    "SYNC_DHIS2_ADMIN_PASSWORD": "district",
}


def error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    return str(info.value)


def test_reference_defaults() -> None:
    """Every LDAP/AD/DHIS2 key has the reference's default (DEPLOYMENT §5.1)."""
    s = load_settings({})
    assert s.identity_backend == "file"
    assert s.ldap_url == "ldap://ldap-service:389"
    assert s.ldap_bind_dn == "cn=readonly,dc=example,dc=org"
    assert (s.ldap_user_base, s.effective_ldap_group_base) == (
        "ou=people",
        "ou=default_prefix,ou=groups",
    )
    assert (s.ldap_user_attribute, s.ldap_fullname_attribute) == ("uid", "givenName")
    assert (s.ldap_group_name_attribute, s.ldap_member_filter) == ("cn", "(memberUid={login})")
    assert (s.ldap_start_tls, s.ldap_ca_file, s.ldap_timeout_seconds, s.ldap_pool_size) == (
        False, None, 5.0, 4,
    )  # fmt: skip
    assert [s.dhis2_site_admins, s.dhis2_administer_tables, s.dhis2_super_user_tables,
            s.dhis2_synchronize_tables, s.dhis2_form_managers, s.dhis2_data_viewers,
            s.dhis2_data_collectors] == [
        "ODK_SITE_ADMIN", "ODK_ADMIN_TABLES", "ODK_SUPER_USER_TABLES", "ODK_SYNC_TABLES",
        "ODK_FORM_MNGR", "ODK_DATA_VIEWERS", "ODK_DATA_COLLECTORS",
    ]  # fmt: skip
    assert (
        s.auth_failures_before_delay, s.auth_failures_before_block, s.auth_block_seconds
    ) == (5, 20, 300)  # fmt: skip
    assert s.anonymous_attachment_access is False


@pytest.mark.parametrize("backend", ["file", "ldap", "LDAP", "activeDirectory", "dhis2"])
def test_backend_names(backend: str) -> None:
    """The four backends are accepted, case-insensitively (activeDirectory as in the reference)."""
    environ = {**LDAP_OK, **AD_OK, **DHIS2_OK, "SYNC_IDENTITY_BACKEND": backend}
    assert load_settings(environ).identity_backend == backend.lower()


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({**LDAP_OK, "SYNC_LDAP_URL": ""}, "SYNC_LDAP_URL is required"),
        ({**LDAP_OK, "SYNC_LDAP_URL": "http://ldap:389"}, "SYNC_LDAP_URL"),
        ({**LDAP_OK, "SYNC_LDAP_URL": "ldap://"}, "SYNC_LDAP_URL"),
        ({**LDAP_OK, "SYNC_LDAP_URL": "ldap://ldap:99999"}, "SYNC_LDAP_URL"),
        ({**LDAP_OK, "SYNC_LDAP_URL": "ldap://u:p@ldap"}, "SYNC_LDAP_URL"),
        ({**LDAP_OK, "SYNC_LDAP_URL": "ldap://ldap/dc=x"}, "SYNC_LDAP_URL"),
        ({"SYNC_IDENTITY_BACKEND": "ldap"}, "SYNC_LDAP_BIND_PASSWORD"),
        ({**LDAP_OK, "SYNC_LDAP_BIND_DN": ""}, "SYNC_LDAP_BIND_DN"),
        ({**LDAP_OK, "SYNC_BASE_DN": ""}, "SYNC_BASE_DN"),
        ({**LDAP_OK, "SYNC_GROUP_PREFIX": ""}, "SYNC_LDAP_GROUP_BASE"),
        ({**LDAP_OK, "SYNC_LDAP_START_TLS": "true", "SYNC_LDAP_URL": "ldaps://x"}, "START_TLS"),
        ({**LDAP_OK, "SYNC_LDAP_CA_FILE": "/nonexistent/ca.pem"}, "SYNC_LDAP_CA_FILE"),
        ({**LDAP_OK, "SYNC_LDAP_MEMBER_FILTER": "memberUid={login}"}, "SYNC_LDAP_MEMBER_FILTER"),
        ({**LDAP_OK, "SYNC_LDAP_MEMBER_FILTER": "(memberUid=alice)"}, "SYNC_LDAP_MEMBER_FILTER"),
        ({**LDAP_OK, "SYNC_LDAP_USER_ATTRIBUTE": "u id"}, "SYNC_LDAP_USER_ATTRIBUTE"),
        ({**LDAP_OK, "SYNC_LDAP_TIMEOUT_SECONDS": "0"}, "SYNC_LDAP_TIMEOUT_SECONDS"),
        ({**LDAP_OK, "SYNC_LDAP_POOL_SIZE": "0"}, "SYNC_LDAP_POOL_SIZE"),
        ({**AD_OK, "SYNC_AD_DOMAIN": ""}, "SYNC_AD_DOMAIN"),
        ({**AD_OK, "SYNC_AD_DOMAIN": "corp"}, "SYNC_AD_DOMAIN"),
        ({**AD_OK, "SYNC_AD_URL": "https://dc"}, "SYNC_AD_URL"),
        ({**AD_OK, "SYNC_LDAP_START_TLS": "true"}, "START_TLS"),  # the default URL is ldaps
        ({**DHIS2_OK, "SYNC_DHIS2_API_URL": ""}, "SYNC_DHIS2_API_URL"),
        ({**DHIS2_OK, "SYNC_DHIS2_API_URL": "dhis2.example.org/api"}, "SYNC_DHIS2_API_URL"),
        ({**DHIS2_OK, "SYNC_DHIS2_ADMIN_PASSWORD": ""}, "SYNC_DHIS2_ADMIN_PASSWORD"),
        ({"SYNC_AUTH_BLOCK_SECONDS": "0"}, "SYNC_AUTH_BLOCK_SECONDS"),
        ({"SYNC_AUTH_FAILURES_BEFORE_BLOCK": "-1"}, "SYNC_AUTH_FAILURES_BEFORE_BLOCK"),
    ],
)
def test_invalid_identity_settings_fail_clearly(environ: dict[str, str], needle: str) -> None:
    """Each mistake stops start-up with a message naming the key."""
    assert needle in error(environ)


def test_other_backends_keys_are_not_checked() -> None:
    """With the file backend, LDAP and DHIS2 keys may stay unset (the reference's defaults)."""
    assert load_settings({"SYNC_LDAP_URL": "", "SYNC_DHIS2_API_URL": ""}).identity_backend == "file"


def test_secret_files(tmp_path: Path) -> None:
    """SYNC_LDAP_BIND_PASSWORD_FILE and SYNC_DHIS2_ADMIN_PASSWORD_FILE read Docker secrets."""
    ldap_secret = tmp_path / "ldap_readonly_password"
    ldap_secret.write_text("from-a-file\n", encoding="utf-8")
    dhis2_secret = tmp_path / "dhis2_admin_password"
    dhis2_secret.write_text("district\n", encoding="utf-8")
    settings = load_settings(
        {
            "SYNC_IDENTITY_BACKEND": "ldap",
            "SYNC_LDAP_BIND_PASSWORD_FILE": str(ldap_secret),
            "SYNC_DHIS2_ADMIN_PASSWORD_FILE": str(dhis2_secret),
        }
    )
    assert settings.ldap_bind_password.get() == "from-a-file"
    assert settings.dhis2_admin_password.get() == "district"
    assert "from-a-file" not in repr(settings)


def test_parsed_values() -> None:
    """URLs, filters and numbers are normalised as documented."""
    settings = load_settings(
        {
            **DHIS2_OK,
            "SYNC_LDAP_URL": "ldaps://ldap.example.org:636",
            "SYNC_LDAP_MEMBER_FILTER": " (member={dn}) ",
            "SYNC_LDAP_TIMEOUT_SECONDS": "2.5",
            "SYNC_LDAP_GROUP_BASE": "ou=odk,ou=groups",
        }
    )
    assert settings.ldap_url == "ldaps://ldap.example.org:636"
    assert settings.ldap_member_filter == "(member={dn})"
    assert settings.ldap_timeout_seconds == 2.5
    assert settings.effective_ldap_group_base == "ou=odk,ou=groups"
    assert settings.dhis2_api_url == "https://dhis2.example.org/api/40"


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({}, FileIdentityProvider),
        (LDAP_OK, LdapIdentityProvider),
        (AD_OK, ActiveDirectoryIdentityProvider),
        (DHIS2_OK, Dhis2IdentityProvider),
    ],
)
async def test_open_identity_provider_selects_the_backend(
    environ: dict[str, str], kind: type, tmp_path: Path
) -> None:
    """open_identity_provider wraps the configured backend in the cache; the throttle comes
    from the same settings."""
    settings = load_settings({**environ, "SYNC_DATA_DIR": str(tmp_path)})
    stack = open_identity_provider(settings)
    db = open_database(settings.effective_database_url, settings.lock_timeout_seconds)
    try:
        assert isinstance(stack.inner, kind)
        store = SqlLoginFailures(db)
        throttle = open_login_throttle(settings, store)
        assert isinstance(throttle, LoginThrottle)
        assert throttle.failures_before_block == 20
        assert throttle.store is store  # counts live in the shared database
    finally:
        await stack.close()
        await db.dispose()


def test_anonymous_authorities_with_attachment_access() -> None:
    """ROLE_ATTACHMENT_VIEWER joins the anonymous authorities only with the flag (checklist 25)."""
    assert anonymous_authorities(False, True) == {"USER_IS_ANONYMOUS", "ROLE_ATTACHMENT_VIEWER"}
    assert anonymous_authorities(True, True) == {
        "USER_IS_ANONYMOUS", "ROLE_ATTACHMENT_VIEWER", "ROLE_USER", "ROLE_SYNCHRONIZE_TABLES",
    }  # fmt: skip
    assert "ROLE_ATTACHMENT_VIEWER" not in anonymous_authorities(True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"anonymous_sync": True, "anonymous_attachment_access": True}


async def test_anonymous_attachment_access_over_http(client: TestClient[Any, Any]) -> None:
    """With both flags an anonymous client syncs; the attachment role changes nothing else."""
    response = await client.get(
        "/odktables/default/tables", headers={"X-OpenDataKit-Version": "2.0"}
    )
    assert response.status == 200
    response = await client.get("/odktables/default/privilegesInfo")
    assert response.status == 401  # §13.5: never for anonymous callers
