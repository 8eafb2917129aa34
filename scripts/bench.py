"""Benchmarks of a real server process: row push/pull/diff and attachment streaming.

Run with `scripts/bench [--rows N] [--mb M]`. Each figure is measured in this one run and
reported with ratios against the other figures of the same run (PostgreSQL against SQLite,
diff against full pull, peak memory against bytes moved), so results compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.postgres import PostgresCluster
from tests.services.server import ServerProcess

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:bench-pw").decode()}
COLUMNS = [
    {"elementKey": k, "elementName": k, "elementType": t, "listChildElementKeys": "[]"}
    for k, t in [("name", "string"), ("age", "integer"), ("weight", "number"), ("note", "string")]
]


def _row(i: int) -> dict[str, Any]:
    return {
        "id": f"uuid:{uuid.uuid4()}",
        "rowETag": None,
        "deleted": False,
        "formId": "bench",
        "locale": "en",
        "savepointType": "COMPLETE",
        "savepointTimestamp": "2026-01-01T00:00:00.000000000",
        "savepointCreator": "username:admin",
        "filterScope": {"defaultAccess": "FULL", "rowOwner": "username:admin",
                        "groupReadOnly": None, "groupModify": None, "groupPrivileged": None},
        "orderedColumns": [
            {"column": "age", "value": str(i % 90)},
            {"column": "name", "value": f"person {i}"},
            {"column": "note", "value": "x" * 200},
            {"column": "weight", "value": f"{50 + i % 40}.5"},
        ],
    }  # fmt: skip


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _rows(base: str, n: int) -> dict[str, float]:
    async with aiohttp.ClientSession(headers=AUTH) as http:
        table_id = f"bench_{uuid.uuid4().hex[:8]}"
        async with http.put(
            f"{base}/odktables/default/tables/{table_id}",
            json={"tableId": table_id, "schemaETag": None, "orderedColumns": COLUMNS},
        ) as r:
            resource = await r.json()
        data_uri, diff_uri = resource["dataUri"], resource["diffUri"]
        etag = None
        started = time.perf_counter()
        for start in range(0, n, 500):
            body = gzip.compress(
                json.dumps(
                    {"rows": [_row(i) for i in range(start, min(n, start + 500))], "dataETag": etag}
                ).encode()
            )
            async with http.put(
                data_uri,
                data=body,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            ) as r:
                assert r.status == 200, await r.text()
                etag = (await r.json())["dataETag"]
        push = time.perf_counter() - started
        midpoint = etag

        async def pull(url: str, params: dict[str, str]) -> tuple[float, int]:
            t0, count, cursor = time.perf_counter(), 0, None
            while True:
                query = {**params, "fetchLimit": "1000", **({"cursor": cursor} if cursor else {})}
                async with http.get(url, params=query) as r:
                    page = await r.json()
                count += len(page["rows"])
                if not page["hasMoreResults"]:
                    return time.perf_counter() - t0, count
                cursor = page["webSafeResumeCursor"]

        full, pulled = await pull(data_uri, {})
        assert pulled == n
        # a small change after a big history: a diff must cost O(changes), not O(table)
        body = {"rows": [_row(n + i) for i in range(10)], "dataETag": etag}
        async with http.put(data_uri, json=body) as r:
            assert r.status == 200
        diff, changed = await pull(diff_uri, {"data_etag": midpoint})
        assert changed == 10
    return {"push_rows_per_s": n / push, "pull_rows_per_s": n / full, "diff_10_ms": diff * 1000}


async def _stream(base: str, megabytes: int) -> dict[str, float]:
    size = megabytes * 1024 * 1024
    digest = hashlib.md5()

    async def body() -> AsyncIterator[bytes]:
        block = bytes(range(256)) * 4096
        sent = 0
        while sent < size:
            chunk = block[: min(len(block), size - sent)]
            digest.update(chunk)
            sent += len(chunk)
            yield chunk

    url = f"{base}/odktables/default/files/2/assets/bench-{uuid.uuid4().hex[:6]}.bin"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        t0 = time.perf_counter()
        async with http.post(url, data=body()) as r:
            assert r.status == 201, await r.text()
        upload = time.perf_counter() - t0
        t0, check = time.perf_counter(), hashlib.md5()
        async with http.get(url) as r:
            async for chunk in r.content.iter_chunked(1 << 20):
                check.update(chunk)
        download = time.perf_counter() - t0
    assert check.hexdigest() == digest.hexdigest()
    return {"upload_mb_per_s": megabytes / upload, "download_mb_per_s": megabytes / download}


def _run(label: str, database_url: str | None, rows: int, megabytes: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    server = ServerProcess(folder, database_url=database_url)
    server.migrate()
    server.add_user("admin", "bench-pw", ["site_admins"])
    with server:
        assert server.proc is not None
        base_rss = _peak_rss_mb(server.proc.pid)
        results = asyncio.run(_rows(server.url, rows))
        results.update(asyncio.run(_stream(server.url, megabytes)))
        results["peak_rss_mb"] = _peak_rss_mb(server.proc.pid)
        results["rss_growth_per_mb_moved"] = (results["peak_rss_mb"] - base_rss) / (2 * megabytes)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    report = {"sqlite": _run("sqlite", None, args.rows, args.mb)}
    cluster = PostgresCluster()
    try:
        cluster.start()
        report["postgres"] = _run("pg", cluster.create_database("bench"), args.rows, args.mb)
    finally:
        cluster.stop()
    for backend, figures in report.items():
        print(f"[{backend}]")
        for key, value in figures.items():
            print(f"  {key:28s} {value:10.2f}")
    print("[ratios, postgres / sqlite]")
    for key in report["sqlite"]:
        print(f"  {key:28s} {report['postgres'][key] / report['sqlite'][key]:10.2f}")
    for backend, figures in report.items():
        print(
            f"[{backend}] full pull time / diff of 10 rows: "
            f"{(args.rows / figures['pull_rows_per_s']) / (figures['diff_10_ms'] / 1000):.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
