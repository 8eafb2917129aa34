"""Persistence: the only package that imports SQLAlchemy."""

from __future__ import annotations

from sync_endpoint.settings import Settings
from sync_endpoint.storage.blobs import BlobStore, DatabaseBlobStore, FilesystemBlobStore
from sync_endpoint.storage.engines import open_database
from sync_endpoint.storage.files_store import SqlFileStore
from sync_endpoint.storage.store import SqlStorage


def open_storage(settings: Settings) -> SqlStorage:
    return SqlStorage(open_database(settings.effective_database_url, settings.lock_timeout_seconds))


def open_file_store(settings: Settings, storage: SqlStorage) -> SqlFileStore:
    """Files share the rows' database; their bytes go where SYNC_BLOB_STORE says."""
    blobs: BlobStore
    if settings.blob_store == "filesystem":
        blobs = FilesystemBlobStore(settings.effective_blob_dir, storage.db)
    else:
        blobs = DatabaseBlobStore(storage.db)
    return SqlFileStore(storage.db, blobs)
