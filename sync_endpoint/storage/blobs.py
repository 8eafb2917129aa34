"""Where file bytes live: in the database (default) or on a filesystem (an option).

Both stream: bodies pass through in chunks, hashed on the way, so a 1 GB attachment never sits
in memory. The database store keeps the bytes in `sync_blob_chunks`, so a database backup is
complete. The filesystem store is content-addressed (SHA-256), writes to a temporary file,
fsyncs and renames it into place before the upload is acknowledged.

A blob is written before the metadata row that refers to it is committed; if that never
happens (a failed or truncated upload) the blob is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, insert, select

from sync_endpoint.core.files import BlobInfo
from sync_endpoint.errors import PayloadTooLarge
from sync_endpoint.storage.engines import Database
from sync_endpoint.storage.schema import sync_attachments, sync_blob_chunks, sync_blobs, sync_files

CHUNK = 1024 * 1024


class BlobStore(Protocol):
    async def write(self, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        """Store a stream; PayloadTooLarge (and nothing stored) beyond `limit` bytes."""
        ...

    def read(self, ref: str) -> AsyncIterator[bytes]: ...

    async def discard(self, refs: Sequence[str]) -> None:
        """Remove blobs no committed metadata refers to any more."""
        ...


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body exceeds the limit of {limit} bytes (SYNC_MAX_REQUEST_BYTES)"
    )


class DatabaseBlobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        md5 = hashlib.md5()
        length = 0
        position = 0
        buffer = bytearray()
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(sync_blobs).returning(sync_blobs.c.pk), {"created_at": datetime.now(UTC)}
            )
            pk = int(result.scalar_one())
        try:
            async for chunk in chunks:
                length += len(chunk)
                if length > limit:
                    raise _too_large(limit)
                md5.update(chunk)
                buffer += chunk
                while len(buffer) >= CHUNK:
                    await self._put(pk, position, bytes(buffer[:CHUNK]))
                    del buffer[:CHUNK]
                    position += 1
            if buffer or position == 0:
                await self._put(pk, position, bytes(buffer))
        except BaseException:
            await asyncio.shield(self.discard([f"db:{pk}"]))
            raise
        return BlobInfo(f"db:{pk}", "md5:" + md5.hexdigest(), length)

    async def _put(self, pk: int, position: int, data: bytes) -> None:
        # One short transaction per chunk: a slow upload never holds SQLite's write lock.
        async with self.db.write() as conn:
            await conn.execute(
                insert(sync_blob_chunks), {"blob_pk": pk, "position": position, "data": data}
            )

    async def read(self, ref: str) -> AsyncIterator[bytes]:
        pk = int(ref.removeprefix("db:"))
        position = 0
        while True:
            async with self.db.snapshot() as conn:
                data = (
                    await conn.execute(
                        select(sync_blob_chunks.c.data).where(
                            sync_blob_chunks.c.blob_pk == pk,
                            sync_blob_chunks.c.position == position,
                        )
                    )
                ).scalar_one_or_none()
            if data is None:
                return
            if data:
                yield bytes(data)
            position += 1

    async def discard(self, refs: Sequence[str]) -> None:
        pks = [int(r.removeprefix("db:")) for r in refs if r.startswith("db:")]
        if not pks:
            return
        async with self.db.write() as conn:
            await conn.execute(delete(sync_blob_chunks).where(sync_blob_chunks.c.blob_pk.in_(pks)))
            await conn.execute(delete(sync_blobs).where(sync_blobs.c.pk.in_(pks)))


class FilesystemBlobStore:
    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db = db

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    async def write(self, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
        md5, sha = hashlib.md5(), hashlib.sha256()
        length = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    length += len(chunk)
                    if length > limit:
                        raise _too_large(limit)
                    md5.update(chunk)
                    sha.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(out.flush)
                await asyncio.to_thread(os.fsync, out.fileno())
            target = self._path(sha.hexdigest())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return BlobInfo(f"fs:{sha.hexdigest()}", "md5:" + md5.hexdigest(), length)

    async def read(self, ref: str) -> AsyncIterator[bytes]:
        path = self._path(ref.removeprefix("fs:"))
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, CHUNK):
                yield chunk

    async def discard(self, refs: Sequence[str]) -> None:
        for ref in refs:
            if not ref.startswith("fs:"):
                continue
            async with self.db.snapshot() as conn:
                used = (
                    await conn.execute(
                        select(sync_files.c.path).where(sync_files.c.blob_ref == ref).limit(1)
                    )
                ).first() or (
                    await conn.execute(
                        select(sync_attachments.c.path)
                        .where(sync_attachments.c.blob_ref == ref)
                        .limit(1)
                    )
                ).first()
            if not used:
                self._path(ref.removeprefix("fs:")).unlink(missing_ok=True)
