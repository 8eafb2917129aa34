"""Manifest ETags (SYNC_PROTOCOL §5.13.4), shared by the table list and the manifests.

Android skips a manifest request when the ETag in the table list equals the ETag header it
stored from the last manifest, so both must come from this one function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def manifest_etag(md5_hashes_by_filename: Iterable[tuple[str, str | None]]) -> str:
    """MD5 over the `md5:` hashes in filename order, hex without leading zeros or prefix."""
    digest = hashlib.md5()
    for _name, md5 in sorted(md5_hashes_by_filename, key=lambda e: (e[0], e[1] or "")):
        if md5 is not None:
            digest.update(md5.encode("utf-8"))
    return format(int(digest.hexdigest(), 16), "x")


EMPTY_MANIFEST_ETAG = manifest_etag([])
