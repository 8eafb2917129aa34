"""App-level and table-level files and row attachments: path rules (SYNC_PROTOCOL §5.13, §5.14).

Paths are keys, never filesystem paths, but they are still held to strict rules so that no
device can be sent a name that would escape its app folder: relative, `/`-separated, no empty,
`.` or `..` segment, no backslash or control character, bounded length.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_endpoint.core.manifest import manifest_etag
from sync_endpoint.errors import BadRequestError

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredFile:
    """A stored file's metadata; `md5` is `md5:` + 32 lower-case hex digits."""

    path: str
    content_type: str
    length: int
    md5: str
    blob_ref: str


@dataclass(frozen=True)
class BlobInfo:
    ref: str
    md5: str
    length: int


def check_path(path: str, what: str = "file path") -> str:
    """Return the path if it is a safe relative path; BadRequestError otherwise."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise BadRequestError(f"Bad arguments: {what} must be 1 to {MAX_PATH_LENGTH} characters")
    if path.startswith("/") or "\\" in path:
        raise BadRequestError(f"Bad arguments: {what} must be relative and use '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadRequestError(f"Bad arguments: {what} contains a control character")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequestError(f"Bad arguments: {what} has an empty, '.' or '..' segment")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise BadRequestError(f"Bad arguments: a {what} segment exceeds 255 characters")
    return path


def table_of_path(path: str) -> str | None:
    """The table a config file belongs to, as the Android client classifies it (D1, D11).

    `tables/<T>/…` → T unless T contains a dot; `assets/csv/<T>.<anything>` and
    `assets/csv/<T>[.<qualifier>]/…` → T (the text before the first dot); else app-level.
    """
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "tables":
        return None if "." in parts[1] else parts[1]
    if len(parts) >= 3 and parts[0] == "assets" and parts[1] == "csv":
        name = parts[2].split(".", 1)[0]
        return name or None
    return None


def manifest_etag_of(files: list[StoredFile]) -> str:
    return manifest_etag((f.path, f.md5) for f in files)


def listed(files: list[StoredFile]) -> list[StoredFile]:
    """Manifest entries: zero-length config files are never listed (D11), sorted by name."""
    return sorted((f for f in files if f.length > 0), key=lambda f: (f.path, f.md5))
