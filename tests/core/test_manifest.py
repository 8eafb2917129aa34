"""Manifest ETags (SYNC_PROTOCOL §5.13.4): MD5 over the md5 hashes in filename order."""

from __future__ import annotations

from sync_endpoint.core.manifest import EMPTY_MANIFEST_ETAG, manifest_etag

APP = ("assets/app.properties", "md5:6f5902ac237024bdd0c176cb93063dc4")
INDEX = ("assets/index.html", "md5:391ebb4c8dada0793c3d9a1ef3bb1a58")


def test_spec_example() -> None:
    """The two-file example of §5.13.4 gives 77c44103b43fe7abec8cc5b2e998279a."""
    assert manifest_etag([APP, INDEX]) == "77c44103b43fe7abec8cc5b2e998279a"


def test_input_order_is_irrelevant() -> None:
    """Entries are sorted by filename before hashing."""
    assert manifest_etag([INDEX, APP]) == manifest_etag([APP, INDEX])


def test_filename_order_decides() -> None:
    """The hashes are fed in filename order, so swapping them between names changes the ETag."""
    swapped = [(APP[0], INDEX[1]), (INDEX[0], APP[1])]
    assert manifest_etag(swapped) != manifest_etag([APP, INDEX])


def test_empty_manifest() -> None:
    """An empty manifest gives the MD5 of nothing, d41d8cd98f00b204e9800998ecf8427e."""
    assert manifest_etag([]) == "d41d8cd98f00b204e9800998ecf8427e"
    assert EMPTY_MANIFEST_ETAG == "d41d8cd98f00b204e9800998ecf8427e"


def test_null_hashes_are_skipped() -> None:
    """Entries without a hash contribute nothing."""
    assert manifest_etag([("a.txt", None)]) == EMPTY_MANIFEST_ETAG
    assert manifest_etag([APP, ("b.txt", None), INDEX]) == manifest_etag([APP, INDEX])


def test_leading_zeros_are_dropped() -> None:
    """The ETag is hexadecimal without leading zeros (this digest is 008ed5ae…)."""
    etag = manifest_etag([("a.txt", "md5:d296c101daa88a51f6ca8cfc1ac79b50")])
    assert etag == "8ed5ae776cf31d3cfe04d396087962"


def test_accepts_any_iterable() -> None:
    """A generator of entries works as well as a list."""
    assert manifest_etag(e for e in [APP, INDEX]) == "77c44103b43fe7abec8cc5b2e998279a"
