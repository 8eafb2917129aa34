"""The real ODK-X sample app (../shared/data/odkx-sample/geotaggerTest) through the file
endpoints: form definition, spreadsheet, definition.csv and properties.csv as table-level files,
and the row's jpg as a row attachment (SYNC_PROTOCOL §3.7–3.9, §3.25–3.28; CLIENT_FLOW §2.5,
§2.10)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.conftest import shared_or_skip
from tests.files.support import (
    download,
    download_request,
    file_url,
    get_manifest,
    md5_of,
    parse_like_android,
    reference_manifest_etag,
    row_manifest,
    row_url,
    upload_batch,
    upload_ok,
)
from tests.helpers import Api

TABLE = "geotagger"
#: Path below tables/geotagger/ (and in the sample folder) → media type Android derives from it.
TABLE_FILES = {
    "forms/geotagger/formDef.json": "application/json",
    "forms/geotagger/geotagger.xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    "definition.csv": "text/csv",
    "properties.csv": "text/csv",
}


def _columns(definition: Path) -> list[dict[str, Any]]:
    """definition.csv (`_element_key,_element_name,_element_type,_list_child_element_keys`) as
    the TableDefinition columns Android sends."""
    rows = list(csv.DictReader(io.StringIO(definition.read_text(encoding="utf-8"))))
    assert rows
    assert set(rows[0]) == {
        "_element_key",
        "_element_name",
        "_element_type",
        "_list_child_element_keys",
    }, rows[:1]
    return [
        {
            "elementKey": r["_element_key"],
            "elementName": r["_element_name"],
            "elementType": r["_element_type"],
            "listChildElementKeys": r["_list_child_element_keys"],
        }
        for r in rows
    ]


async def test_sample_app_files_round_trip(api: Api) -> None:
    """The geotagger form files and CSVs come back byte-identical with the right md5 from the table
    manifest, which lists exactly those four files."""
    sample = shared_or_skip("data", "odkx-sample", "geotaggerTest")
    await api.create_table(TABLE, _columns(sample / "definition.csv"))
    expected: dict[str, bytes] = {}
    for relative, content_type in TABLE_FILES.items():
        data = (sample / relative).read_bytes()
        path = f"tables/{TABLE}/{relative}"
        expected[path] = data
        response = await upload_ok(api, path, data, content_type=content_type)
        assert response.status == 201

    body, etag = await get_manifest(api, TABLE)
    assert [e["filename"] for e in body["files"]] == sorted(expected)
    assert etag == reference_manifest_etag({p: md5_of(d) for p, d in expected.items()})
    resource = await api.get_json(api.app_url(f"/tables/{TABLE}"))
    assert resource["tableLevelManifestETag"] == etag
    assert await get_manifest(api) == ({"files": []}, "d41d8cd98f00b204e9800998ecf8427e")
    for entry in body["files"]:
        data = expected[entry["filename"]]
        assert entry["contentLength"] == len(data)
        assert entry["md5hash"] == md5_of(data)
        assert entry["contentType"] == TABLE_FILES[entry["filename"].split("/", 2)[2]]
        got, content = await download(api, entry["downloadUrl"])
        assert got.status == 200
        assert content == data
        assert md5_of(content) == entry["md5hash"] == got.headers["ETag"]
        assert entry["downloadUrl"].endswith(file_url(api, entry["filename"]))


async def test_sample_row_attachment_round_trip(api: Api) -> None:
    """The sample row's jpg (instances/<rowId>/…) uploaded as that row's attachment comes back
    byte-identical through the manifest, GET and Android's batch download."""
    sample = shared_or_skip("data", "odkx-sample", "geotaggerTest")
    table = await api.create_table(TABLE, _columns(sample / "definition.csv"))
    (folder,) = (sample / "instances").iterdir()
    (image,) = folder.iterdir()
    row_id, name, data = folder.name, image.name, image.read_bytes()
    assert len(data) > 1_000_000

    response = await upload_batch(api, table, row_id, [(name, "image/jpeg", data)])
    assert response.status == 201, await response.text()
    body, _ = await row_manifest(api, table, row_id)
    (entry,) = body["files"]
    assert entry["filename"] == name
    assert entry["contentLength"] == len(data)
    assert entry["contentType"] == "image/jpeg"
    assert entry["md5hash"] == md5_of(data)
    assert entry["downloadUrl"] == row_url(table, row_id, f"file/{name}")

    got, content = await download(api, entry["downloadUrl"])
    assert got.status == 200
    assert content == data
    assert got.headers["ETag"] == md5_of(data)
    batch = await api.request(
        "POST", row_url(table, row_id, "download"), json_body=download_request([name])
    )
    assert batch.status == 200
    parts = parse_like_android(batch.headers["Content-Type"], await batch.read())
    assert [(p.name, md5_of(p.data)) for p in parts] == [(name, md5_of(data))]
