"""The error hierarchy shared by every layer; mapped to HTTP once, in api/middleware.py.

Each class names the ODK-X `Error.type` it is answered with (SYNC_PROTOCOL §4.26, §6.2).
Nothing here imports aiohttp: the domain and storage layers raise these directly.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the server answers on purpose."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequestError(SyncError):
    """Malformed input: bad JSON, unknown fields, bad values, bad paging arguments (D9)."""

    status = 400
    code = "BAD_REQUEST"


class BadColumnNameError(BadRequestError):
    """A row names a column the table does not store, or a metadata column (§5.5)."""

    code = "BAD_COLUMN_NAME"


class AuthenticationRequired(SyncError):
    """No or wrong credentials: 401 with the Basic challenge (D2)."""

    status = 401
    code = "PERMISSION_DENIED"


class PermissionDenied(SyncError):
    """Authenticated but lacking a role: 403 with a text/plain body (D2)."""

    status = 403
    code = "PERMISSION_DENIED"


class NotFoundError(SyncError):
    """A resource (row, file, ACL) that does not exist."""

    status = 404
    code = "RESOURCE_NOT_FOUND"


class TableNotFound(NotFoundError):
    code = "TABLE_NOT_FOUND"


class AppNameMismatch(SyncError):
    """An appId this deployment does not serve (D16)."""

    status = 412
    code = "APP_NAME_MISMATCH"


class SchemaETagMismatch(SyncError):
    """The schemaETag in the URL is not the table's live one (§2.10)."""

    status = 412
    code = "SCHEMA_ETAG_MISMATCH"


class DataETagMismatch(SyncError):
    """A row push based on a stale dataETag: 409 makes Android pull and push again (§5.5)."""

    status = 409
    code = "ETAG_MISMATCH"


class TableAlreadyExists(SyncError):
    """A create with a column set different from the existing table's (D4)."""

    status = 409
    code = "TABLE_EXISTS"


class PayloadTooLarge(SyncError):
    """A request body (after decompression) above the configured limit (D10)."""

    status = 413
    code = "BAD_REQUEST"


class UnsupportedMediaType(SyncError):
    status = 415
    code = "BAD_REQUEST"


class TooManyRequests(SyncError):
    """Too many failed logins for this login name or client address: 429 with Retry-After."""

    status = 429
    code = "BAD_REQUEST"

    def __init__(self, message: str = "", *, retry_after: int = 60) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class LockUnavailable(SyncError):
    """The table lock was not obtained in time: 503 with Retry-After (D6)."""

    status = 503
    code = "LOCK_TIMEOUT"

    def __init__(self, message: str = "", *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(SyncError):
    """A backing service (directory, database) does not answer: 503, never 401/500 (D13)."""

    status = 503
    code = "INTERNAL_ERROR"

    def __init__(self, message: str = "", *, retry_after: int = 10) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class NotModified(SyncError):
    """A conditional GET whose If-None-Match matched: 304 with the ETag, no body."""

    status = 304
    code = ""

    def __init__(self, etag: str) -> None:
        super().__init__("", headers={"ETag": etag})


class ConfigError(Exception):
    """Invalid settings; raised at start-up with a message naming the key."""
