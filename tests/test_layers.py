"""The layers import one way: core/ knows neither HTTP nor SQL; only storage/ knows SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sync_endpoint"

FORBIDDEN = {
    "core": (
        "aiohttp",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "aiosqlite",
        "ldap3",
        "sync_endpoint.api",
        "sync_endpoint.storage",
        "sync_endpoint.identity",
    ),
    "api": ("sqlalchemy", "alembic", "psycopg", "aiosqlite", "ldap3", "sync_endpoint.storage"),
    "identity": ("aiohttp.web", "sqlalchemy", "sync_endpoint.api", "sync_endpoint.storage"),
    "storage": ("aiohttp", "sync_endpoint.api", "sync_endpoint.identity"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    """No module of a layer imports what its layer must not know about."""
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[layer]:
                if name == banned or name.startswith(banned + "."):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []
