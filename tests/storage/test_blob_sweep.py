"""`sync-endpoint gc-blobs`: unreferenced blobs (crash leftovers) go, referenced ones stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from sync_endpoint.appkeys import services_key
from tests.helpers import Api


@pytest.fixture(params=["database", "filesystem"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"blob_store": request.param}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_sweep_removes_only_unreferenced_blobs(api: Api) -> None:
    """An orphaned blob is swept; the blob of a stored config file survives and still serves."""
    response = await api.request(
        "POST", api.app_url("/files/2/assets/kept.txt"), data=b"kept", headers={}
    )
    assert response.status == 201
    files = cast(Any, api.client.server).app[services_key].files
    files.blobs.GRACE_SECONDS = 0  # the filesystem store's in-flight protection, off for the test
    orphan = await files.write_blob(_chunks(b"orphan"), 1000, "text/plain", "x")
    assert [chunk async for chunk in files.read(orphan)] == [b"orphan"]
    assert await files.sweep_blobs(older_than=-1) == 1
    assert await files.sweep_blobs(older_than=-1) == 0
    kept = await api.request("GET", api.app_url("/files/2/assets/kept.txt"))
    assert (kept.status, await kept.read()) == (200, b"kept")


async def test_sweep_spares_recent_blobs(api: Api) -> None:
    """A blob younger than --older-than (an upload that may still be committing) is kept."""
    files = cast(Any, api.client.server).app[services_key].files
    await files.write_blob(_chunks(b"in flight"), 1000, "text/plain", "x")
    assert await files.sweep_blobs(older_than=3600) == 0
