"""A small ODK-X protocol client for black-box tests, and builders for entities."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

ODK = {"X-OpenDataKit-Version": "2.0"}


def column(key: str, kind: str, name: str | None = None, children: str = "[]") -> dict[str, Any]:
    return {
        "elementKey": key,
        "elementName": name or key,
        "elementType": kind,
        "listChildElementKeys": children,
    }


CENSUS_COLUMNS = [
    column("age", "integer"),
    column(
        "location",
        "geopoint",
        children='["location_accuracy","location_altitude","location_latitude",'
        '"location_longitude"]',
    ),
    column("location_accuracy", "number", "accuracy"),
    column("location_altitude", "number", "altitude"),
    column("location_latitude", "number", "latitude"),
    column("location_longitude", "number", "longitude"),
    column("name", "string"),
]

CENSUS_RETAINED = [
    "age",
    "location_accuracy",
    "location_altitude",
    "location_latitude",
    "location_longitude",
    "name",
]


def new_id() -> str:
    return f"uuid:{uuid.uuid4()}"


def row(
    row_id: str | None = None,
    row_etag: str | None = None,
    deleted: bool = False,
    scope: dict[str, Any] | None = None,
    **values: str | None,
) -> dict[str, Any]:
    """A Row as Android sends it: every retained column, sorted by column."""
    columns: dict[str, str | None] = dict.fromkeys(CENSUS_RETAINED)
    columns.update(values)
    return {
        "id": row_id if row_id is not None else new_id(),
        "rowETag": row_etag,
        "dataETagAtModification": None,
        "deleted": deleted,
        "createUser": None,
        "lastUpdateUser": None,
        "formId": "census",
        "locale": "en_US",
        "savepointType": "COMPLETE",
        "savepointTimestamp": "2024-05-02T09:15:27.310000000",
        "savepointCreator": "username:alice",
        "filterScope": scope
        if scope is not None
        else {
            "defaultAccess": "FULL",
            "rowOwner": "username:alice",
            "groupReadOnly": None,
            "groupModify": None,
            "groupPrivileged": None,
        },
        "orderedColumns": [{"column": c, "value": v} for c, v in sorted(columns.items())],
    }


@dataclass
class Table:
    """A created table: its resource as the server returned it."""

    resource: dict[str, Any]

    @property
    def table_id(self) -> str:
        return str(self.resource["tableId"])

    @property
    def schema_etag(self) -> str:
        return str(self.resource["schemaETag"])

    @property
    def data_uri(self) -> str:
        return str(self.resource["dataUri"])

    @property
    def diff_uri(self) -> str:
        return str(self.resource["diffUri"])

    @property
    def definition_uri(self) -> str:
        return str(self.resource["definitionUri"])


class Api:
    """Requests against the test server as one user (Basic credentials sent up front)."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        users: dict[str, tuple[str, list[str]]],
        user: str | None,
        app_id: str = "default",
    ) -> None:
        self.client = client
        self.users = users
        self.user = user
        self.app_id = app_id

    def as_user(self, user: str | None) -> Api:
        return Api(self.client, self.users, user, self.app_id)

    def auth_headers(self) -> dict[str, str]:
        if self.user is None:
            return {}
        password = self.users[self.user][0] if self.user in self.users else "carol-pw"
        token = base64.b64encode(f"{self.user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def path(self, url: str) -> str:
        """Server URLs are absolute; the test client wants the path."""
        if url.startswith("http"):
            return "/" + url.split("/", 3)[3]
        return url

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        gzip_body: bool = False,
        params: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        send_headers = {**ODK, **self.auth_headers(), **(headers or {})}
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            send_headers.setdefault("Content-Type", "application/json")
        if gzip_body and body is not None:
            body = gzip.compress(body)
            send_headers["Content-Encoding"] = "gzip"
        response: aiohttp.ClientResponse = await self.client.request(
            method,
            self.path(url),
            data=body,
            headers=send_headers,
            params=params,
        )
        await response.read()
        return response

    async def get_json(self, url: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.request("GET", url, **kwargs)
        assert response.status == status, await response.text()
        return await response.json()

    def app_url(self, suffix: str = "") -> str:
        return f"/odktables/{self.app_id}{suffix}"

    async def create_table(
        self, table_id: str | None = None, columns: list[dict[str, Any]] | None = None
    ) -> Table:
        table_id = table_id or f"t_{uuid.uuid4().hex[:10]}"
        response = await self.request(
            "PUT",
            self.app_url(f"/tables/{table_id}"),
            json_body={
                "tableId": table_id,
                "schemaETag": None,
                "orderedColumns": columns or CENSUS_COLUMNS,
            },
            gzip_body=True,
        )
        assert response.status == 200, await response.text()
        return Table(await response.json())

    async def push(
        self, table: Table, rows: list[dict[str, Any]], data_etag: str | None, status: int = 200
    ) -> Any:
        response = await self.request(
            "PUT", table.data_uri, json_body={"rows": rows, "dataETag": data_etag}, gzip_body=True
        )
        assert response.status == status, await response.text()
        return await response.json()

    async def table_resource(self, table: Table) -> dict[str, Any]:
        result: dict[str, Any] = await self.get_json(self.app_url(f"/tables/{table.table_id}"))
        return result
