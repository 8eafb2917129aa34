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
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

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

    async def sweep(self, older_than: float) -> int:
        """Remove unreferenced blobs older than `older_than` seconds (left by a crash between a
        blob write and its metadata commit); returns how many were removed."""
        ...


async def referenced_refs(db: Database, prefix: str) -> set[str]:
    """Every blob ref with this prefix that a config file or an attachment points at."""
    async with db.snapshot() as conn:
        refs: set[str] = set()
        for table in (sync_files, sync_attachments):
            result = await conn.execute(
                select(table.c.blob_ref).where(table.c.blob_ref.startswith(prefix))
            )
            refs.update(r[0] for r in result)
    return refs


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

    async def sweep(self, older_than: float) -> int:
        used = {int(r.removeprefix("db:")) for r in await referenced_refs(self.db, "db:")}
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        async with self.db.snapshot() as conn:
            result = await conn.execute(
                select(sync_blobs.c.pk).where(sync_blobs.c.created_at < cutoff)
            )
            stale = [f"db:{pk}" for (pk,) in result if pk not in used]
        await self.discard(stale)
        return len(stale)

    async def discard(self, refs: Sequence[str]) -> None:
        pks = [int(r.removeprefix("db:")) for r in refs if r.startswith("db:")]
        if not pks:
            return
        async with self.db.write() as conn:
            await conn.execute(delete(sync_blob_chunks).where(sync_blob_chunks.c.blob_pk.in_(pks)))
            await conn.execute(delete(sync_blobs).where(sync_blobs.c.pk.in_(pks)))


class FilesystemBlobStore:
    """Content-addressed files under `root`, shared by identical uploads.

    Sharing means a delete must not remove a blob that a concurrent upload of the same bytes is
    about to reference. Two rules close that window: the final rename and the "unreferenced?"
    check-and-unlink run under one exclusive lock file (held across processes on one host), and
    a blob renamed into place less than `GRACE_SECONDS` ago is never removed — its upload's
    metadata commit follows the rename at once. A blob kept by the grace rule and then never
    referenced is only wasted space, never a lost file.
    """

    GRACE_SECONDS = 120.0

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db = db

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def _acquire(self) -> IO[str]:
        """Take the store's exclusive lock (blocking: call in a worker thread); close releases."""
        os.makedirs(self.root, exist_ok=True)
        lock = open(self.root / ".lock", "a")  # noqa: SIM115 - closed by the caller
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock

    def _install(self, tmp_name: str, digest: str) -> None:
        target = self._path(digest)
        os.makedirs(target.parent, exist_ok=True)
        with self._acquire():
            os.replace(tmp_name, target)
            os.utime(target)  # a fresh mtime protects it from a concurrent discard

    async def write(self, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        tmp_dir = self.root / "tmp"
        await asyncio.to_thread(os.makedirs, tmp_dir, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
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
            await asyncio.to_thread(self._install, tmp_name, sha.hexdigest())
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

    async def _referenced(self, ref: str) -> bool:
        async with self.db.snapshot() as conn:
            for table in (sync_files, sync_attachments):
                found = await conn.execute(
                    select(table.c.path).where(table.c.blob_ref == ref).limit(1)
                )
                if found.first() is not None:
                    return True
        return False

    def _remove_if_old(self, ref: str) -> None:
        path = self._path(ref.removeprefix("fs:"))
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime > self.GRACE_SECONDS:
                path.unlink()

    async def sweep(self, older_than: float) -> int:
        used = await referenced_refs(self.db, "fs:")

        def candidates() -> list[str]:
            cutoff = time.time() - older_than
            found = []
            for path in self.root.glob("??/??/*"):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    found.append(f"fs:{path.name}")
            return found

        def leftovers() -> None:  # temporary files of uploads cut off by a crash
            cutoff = time.time() - older_than
            for path in (self.root / "tmp").glob("*"):
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)

        await asyncio.to_thread(leftovers)
        stale = [ref for ref in await asyncio.to_thread(candidates) if ref not in used]
        await self.discard(stale)
        return len(stale)

    async def discard(self, refs: Sequence[str]) -> None:
        for ref in refs:
            if not ref.startswith("fs:"):
                continue
            lock = await asyncio.to_thread(self._acquire)
            try:
                if not await self._referenced(ref):
                    await asyncio.to_thread(self._remove_if_old, ref)
            finally:
                await asyncio.to_thread(lock.close)
