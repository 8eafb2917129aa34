"""A small LDIF (RFC 2849) reader and writer for the embedded file directory.

Only content records are supported (no change records): that is what `slapadd`/`ldapadd`
accept for a fresh directory, so the file loads into OpenLDAP unchanged (DECISIONS D13).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

Entry = tuple[str, dict[str, list[str]]]


def parse(text: str) -> list[Entry]:
    """Parse LDIF text into (dn, {attribute: [values]}) records; attribute names lower-cased."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]  # folded continuation line
        else:
            lines.append(raw)
    entries: list[Entry] = []
    dn: str | None = None
    attrs: dict[str, list[str]] = {}
    for line in [*lines, ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if dn is not None:
                entries.append((dn, attrs))
            dn, attrs = None, {}
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed LDIF line: {line[:60]!r}")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value.strip()
        key = name.strip().lower()
        if key == "version" and dn is None:
            continue
        if key == "dn":
            dn = value
        elif dn is None:
            raise ValueError(f"attribute before dn: {line[:60]!r}")
        else:
            attrs.setdefault(key, []).append(value)
    return entries


def _needs_base64(value: str) -> bool:
    return (
        not value.isascii()
        or value[:1] in (" ", ":", "<")
        or value.endswith(" ")
        or any(c in value for c in "\r\n\0")
    )


def format_entries(entries: Iterable[tuple[str, list[tuple[str, str]]]]) -> str:
    """Write records as LDIF; each record is a dn and ordered (attribute, value) pairs."""
    out: list[str] = []  # no "version: 1" line: slapadd refuses it
    for dn, pairs in entries:
        for name, value in [("dn", dn), *pairs]:
            if _needs_base64(value):
                out.append(f"{name}:: {base64.b64encode(value.encode()).decode()}")
            else:
                out.append(f"{name}: {value}")
        out.append("")
    return "\n".join(out)
