"""Identity backends behind one interface (core.ports.IdentityProvider)."""

from __future__ import annotations

from sync_endpoint.core.ports import IdentityProvider
from sync_endpoint.identity.cache import CachingIdentityProvider
from sync_endpoint.identity.file import DirectoryFile, FileIdentityProvider
from sync_endpoint.settings import Settings


def directory_file(settings: Settings) -> DirectoryFile:
    return DirectoryFile(settings.effective_directory_file, settings.base_dn, settings.group_prefix)


def open_identity_provider(settings: Settings) -> CachingIdentityProvider:
    """The configured backend wrapped in the credential cache."""
    inner: IdentityProvider = FileIdentityProvider(directory_file(settings))
    return CachingIdentityProvider(inner, settings.credential_cache_seconds)
