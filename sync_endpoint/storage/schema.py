"""The static schema (DECISIONS D5): ODK-X tables are data, not DDL.

Identical on PostgreSQL and SQLite; Alembic migrations in storage/migrations create it.
Row values live as JSON text ({elementKey: string|null}) exactly as received.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")
ETag = String(80)
Id = String(255)


def _table_fk() -> Column[int]:
    return Column(
        "table_pk", BigId, ForeignKey("sync_tables.pk", ondelete="CASCADE"), nullable=False
    )


def _row_columns() -> list[Column[object]]:
    """Metadata and values shared by the current-row store and the revision log."""
    return [
        Column("row_etag", ETag, nullable=False),
        Column("data_etag_at_modification", ETag),
        Column("deleted", Boolean, nullable=False),
        Column("create_user", Text),
        Column("last_update_user", Text),
        Column("form_id", Text),
        Column("locale", Text),
        Column("savepoint_type", Text),
        Column("savepoint_timestamp", Text),
        Column("savepoint_creator", Text),
        Column("default_access", String(16), nullable=False),
        Column("row_owner", Text),
        Column("group_read_only", Text),
        Column("group_modify", Text),
        Column("group_privileged", Text),
        Column("values_json", Text, nullable=False),
    ]


sync_tables = Table(
    "sync_tables",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("app_id", String(100), nullable=False),
    Column("table_id", Id, nullable=False),
    Column("schema_etag", ETag, nullable=False),
    Column("data_etag", ETag),
    Column("columns_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("app_id", "table_id"),
)

sync_rows = Table(
    "sync_rows",
    metadata,
    _table_fk(),
    Column("row_id", Id, nullable=False),
    *_row_columns(),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("table_pk", "row_id"),
    Index(None, "table_pk", "first_seq"),
    Index(None, "table_pk", "last_seq"),
    Index(None, "table_pk", "data_etag_at_modification"),
)

sync_revisions = Table(
    "sync_revisions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    _table_fk(),
    Column("row_id", Id, nullable=False),
    Column("previous_row_etag", ETag),
    *_row_columns(),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index(None, "table_pk", "seq"),
    Index(None, "table_pk", "data_etag_at_modification"),
)

sync_change_sets = Table(
    "sync_change_sets",
    metadata,
    _table_fk(),
    Column("data_etag", ETag, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("table_pk", "data_etag"),
    Index(None, "table_pk", "last_seq"),
)

sync_table_acls = Table(
    "sync_table_acls",
    metadata,
    _table_fk(),
    Column("scope_type", String(16), nullable=False),
    # '' stands for the null scope value of DEFAULT (NULLs never collide in a primary key).
    Column("scope_value", Id, nullable=False),
    Column("role", String(64), nullable=False),
    PrimaryKeyConstraint("table_pk", "scope_type", "scope_value"),
)

sync_installation_log = Table(
    "sync_installation_log",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("installation_id", String(255), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("user_name", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("table_id", Id),
    Column("detail", Text),
)

# -- files and attachments (migration 0002) --------------------------------------------------

#: Blob bodies kept in the database (the default store), in chunks so they stream both ways.
sync_blobs = Table(
    "sync_blobs",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sync_blob_chunks = Table(
    "sync_blob_chunks",
    metadata,
    Column("blob_pk", BigId, ForeignKey("sync_blobs.pk", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("blob_pk", "position"),
)


def _file_columns() -> list[Column[object]]:
    return [
        Column("content_type", Text, nullable=False),
        Column("length", BigInteger, nullable=False),
        Column("md5", String(40), nullable=False),
        Column("blob_ref", String(100), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


#: App-level and table-level config files, per client version (`table_id` '' = app level).
sync_files = Table(
    "sync_files",
    metadata,
    Column("app_id", String(100), nullable=False),
    Column("client_version", String(32), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("table_id", Id, nullable=False),
    *_file_columns(),
    PrimaryKeyConstraint("app_id", "client_version", "path"),
    Index(None, "app_id", "table_id"),
)

#: Row attachments: immutable once stored (D11); kept when the row is deleted (§5.14.1).
sync_attachments = Table(
    "sync_attachments",
    metadata,
    _table_fk(),
    Column("row_id", Id, nullable=False),
    Column("path", String(1024), nullable=False),
    *_file_columns(),
    PrimaryKeyConstraint("table_pk", "row_id", "path"),
)

# -- failed-login throttling, shared by every replica (migration 0003) -----------------------

#: One row per login name ("login:<casefolded>") or client address ("addr:<ip>") with recent
#: failures; times are epoch seconds. Rows are forgotten `block_seconds` after `last_failure`.
sync_login_throttle = Table(
    "sync_login_throttle",
    metadata,
    Column("scope", String(255), primary_key=True),
    Column("last_failure", Double, nullable=False),
    Column("blocked_until", Double, nullable=False),
    Index(None, "last_failure"),
)

#: The distinct wrong credentials (HMAC tags) counted for a scope.
sync_login_failures = Table(
    "sync_login_failures",
    metadata,
    Column(
        "scope",
        String(255),
        ForeignKey("sync_login_throttle.scope", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tag", String(64), nullable=False),
    PrimaryKeyConstraint("scope", "tag"),
)

#: Server-wide secrets created on first use (e.g. the login throttle's HMAC key).
sync_secrets = Table(
    "sync_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
