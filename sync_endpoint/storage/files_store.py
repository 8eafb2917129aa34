"""Metadata of config files and row attachments; the bytes are in a BlobStore."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sync_endpoint.core.files import StoredFile
from sync_endpoint.core.models import TableEntry
from sync_endpoint.errors import BadRequestError
from sync_endpoint.storage.blobs import BlobStore
from sync_endpoint.storage.engines import Database
from sync_endpoint.storage.schema import sync_attachments, sync_files


def _file(record: Any) -> StoredFile:
    return StoredFile(
        path=record["path"],
        content_type=record["content_type"],
        length=int(record["length"]),
        md5=record["md5"],
        blob_ref=record["blob_ref"],
    )


def _values(file: StoredFile) -> dict[str, Any]:
    return {
        "content_type": file.content_type,
        "length": file.length,
        "md5": file.md5,
        "blob_ref": file.blob_ref,
        "updated_at": datetime.now(UTC),
    }


class SqlFileStore:
    """Config files (per app, client version and path) and row attachments.

    None of these operations takes a table lock (D6): files never block row pushes.
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    async def write_blob(
        self, chunks: AsyncIterable[bytes], limit: int, content_type: str, path: str
    ) -> StoredFile:
        info = await self.blobs.write(chunks, limit)
        return StoredFile(path, content_type, info.length, info.md5, info.ref)

    def read(self, file: StoredFile) -> AsyncIterator[bytes]:
        return self.blobs.read(file.blob_ref)

    async def discard(self, file: StoredFile) -> None:
        await self.blobs.discard([file.blob_ref])

    # -- config files ----------------------------------------------------------------------

    async def get_file(self, app_id: str, version: str, path: str) -> StoredFile | None:
        async with self.db.snapshot() as conn:
            record = (
                (
                    await conn.execute(
                        select(sync_files).where(
                            sync_files.c.app_id == app_id,
                            sync_files.c.client_version == version,
                            sync_files.c.path == path,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _file(record) if record else None

    async def put_file(
        self, app_id: str, version: str, table_id: str | None, file: StoredFile
    ) -> bool:
        """Store or replace; returns True when the path was new. The old blob is discarded."""
        key = {"app_id": app_id, "client_version": version, "path": file.path}
        where = [sync_files.c[name] == value for name, value in key.items()]
        old: StoredFile | None = None
        async with self.db.write() as conn:
            record = (await conn.execute(select(sync_files).where(*where))).mappings().first()
            if record is not None:
                old = _file(record)
                await conn.execute(update(sync_files).where(*where).values(**_values(file)))
            else:
                await conn.execute(
                    insert(sync_files), {**key, "table_id": table_id or "", **_values(file)}
                )
        if old is not None and old.blob_ref != file.blob_ref:
            await self.blobs.discard([old.blob_ref])
        return old is None

    async def delete_file(self, app_id: str, version: str, path: str) -> bool:
        where = [
            sync_files.c.app_id == app_id,
            sync_files.c.client_version == version,
            sync_files.c.path == path,
        ]
        async with self.db.write() as conn:
            record = (await conn.execute(select(sync_files).where(*where))).mappings().first()
            if record is None:
                return False
            await conn.execute(delete(sync_files).where(*where))
        await self.blobs.discard([record["blob_ref"]])
        return True

    async def list_files(self, app_id: str, version: str, table_id: str | None) -> list[StoredFile]:
        async with self.db.snapshot() as conn:
            result = await conn.execute(
                select(sync_files).where(
                    sync_files.c.app_id == app_id,
                    sync_files.c.client_version == version,
                    sync_files.c.table_id == (table_id or ""),
                )
            )
            return [_file(r) for r in result.mappings()]

    async def list_table_files(
        self, app_id: str, version: str, table_ids: list[str]
    ) -> dict[str, list[StoredFile]]:
        """Table-level files of several tables in one query (the table list needs them all)."""
        found: dict[str, list[StoredFile]] = {table_id: [] for table_id in table_ids}
        if not table_ids:
            return found
        async with self.db.snapshot() as conn:
            result = await conn.execute(
                select(sync_files).where(
                    sync_files.c.app_id == app_id,
                    sync_files.c.client_version == version,
                    sync_files.c.table_id.in_(table_ids),
                )
            )
            for record in result.mappings():
                found[record["table_id"]].append(_file(record))
        return found

    async def client_versions(self, app_id: str) -> list[str]:
        async with self.db.snapshot() as conn:
            result = await conn.execute(
                select(sync_files.c.client_version)
                .where(sync_files.c.app_id == app_id)
                .distinct()
                .order_by(sync_files.c.client_version)
            )
            return [r[0] for r in result]

    async def discard_refs(self, refs: list[str]) -> None:
        await self.blobs.discard(refs)

    async def sweep_blobs(self, older_than: float) -> int:
        return await self.blobs.sweep(older_than)

    # -- row attachments -------------------------------------------------------------------

    async def get_attachment(self, table: TableEntry, row_id: str, path: str) -> StoredFile | None:
        async with self.db.snapshot() as conn:
            record = (
                (
                    await conn.execute(
                        select(sync_attachments).where(
                            sync_attachments.c.table_pk == table.pk,
                            sync_attachments.c.row_id == row_id,
                            sync_attachments.c.path == path,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _file(record) if record else None

    async def add_attachment(self, table: TableEntry, row_id: str, file: StoredFile) -> None:
        """Store an attachment once; identical bytes again are a no-op, different ones a 400.

        Attachments are immutable (D11): a device that changes a file gives it a new name.
        """
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(sync_attachments),
                    {"table_pk": table.pk, "row_id": row_id, "path": file.path, **_values(file)},
                )
            return
        except IntegrityError:
            pass
        existing = await self.get_attachment(table, row_id, file.path)
        await self.blobs.discard([file.blob_ref])
        if existing is None:  # the row's table was dropped meanwhile
            raise BadRequestError("The table was deleted during the upload")
        if existing.md5 != file.md5:
            raise BadRequestError(
                "File on server does not match file being uploaded. Aborting upload. \n" + file.path
            )

    async def list_attachments(self, table: TableEntry, row_id: str) -> list[StoredFile]:
        async with self.db.snapshot() as conn:
            result = await conn.execute(
                select(sync_attachments).where(
                    sync_attachments.c.table_pk == table.pk, sync_attachments.c.row_id == row_id
                )
            )
            return sorted((_file(r) for r in result.mappings()), key=lambda f: f.path)
