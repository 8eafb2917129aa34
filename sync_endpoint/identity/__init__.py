"""Identity backends behind one interface (core.ports.IdentityProvider)."""

from __future__ import annotations

from sync_endpoint.core.ports import IdentityProvider
from sync_endpoint.identity.cache import CachingIdentityProvider
from sync_endpoint.identity.file import DirectoryFile, FileIdentityProvider
from sync_endpoint.identity.throttle import FailureStore, LoginThrottle
from sync_endpoint.settings import Settings


def directory_file(settings: Settings) -> DirectoryFile:
    return DirectoryFile(settings.effective_directory_file, settings.base_dn, settings.group_prefix)


def open_backend(settings: Settings) -> IdentityProvider:
    """The backend SYNC_IDENTITY_BACKEND names, without cache (imports only what it uses)."""
    backend = settings.identity_backend
    if backend == "ldap":
        from sync_endpoint.identity.ldap import LdapIdentityProvider

        return LdapIdentityProvider.from_settings(settings)
    if backend == "activedirectory":
        from sync_endpoint.identity.activedirectory import ActiveDirectoryIdentityProvider

        return ActiveDirectoryIdentityProvider.from_settings(settings)
    if backend == "dhis2":
        from sync_endpoint.identity.dhis2 import Dhis2IdentityProvider

        return Dhis2IdentityProvider.from_settings(settings)
    return FileIdentityProvider(directory_file(settings))


def open_identity_provider(settings: Settings) -> CachingIdentityProvider:
    """The configured backend wrapped in the credential cache."""
    return CachingIdentityProvider(open_backend(settings), settings.credential_cache_seconds)


def open_login_throttle(settings: Settings, store: FailureStore) -> LoginThrottle:
    """Failed-login throttling, consulted by the authentication middleware; its counts live in
    `store` (the storage's database), so every replica sharing it shares them."""
    return LoginThrottle(
        store,
        settings.auth_failures_before_delay,
        settings.auth_failures_before_block,
        settings.auth_block_seconds,
    )
