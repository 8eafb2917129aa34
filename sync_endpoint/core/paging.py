"""Opaque, URL-safe cursors bound to the query that made them (DECISIONS D8).

A cursor carries a query fingerprint, a direction and the keyset position of the boundary
item. A cursor from another query, or one that was altered, is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from sync_endpoint.errors import BadRequestError


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts: after `key` (forward) or before it (backward); None = first page."""

    limit: int
    key: int | str | None = None
    backward: bool = False


def _digest(payload: bytes) -> str:
    return hashlib.blake2s(payload, digest_size=6).hexdigest()


def encode_cursor(query: str, key: int | str, backward: bool = False) -> str:
    body = json.dumps({"q": query, "k": key, "b": backward}, separators=(",", ":")).encode()
    token = base64.urlsafe_b64encode(body + b"|" + _digest(body).encode()).decode()
    return token.rstrip("=")


def decode_cursor(query: str, token: str) -> tuple[int | str, bool]:
    """Return (key, backward) of a cursor made by `query`; BadRequestError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body, _, digest = raw.rpartition(b"|")
        if not body or digest.decode() != _digest(body):
            raise ValueError
        data = json.loads(body)
        key, backward = data["k"], data["b"]
        if data["q"] != query:
            raise BadRequestError("Bad arguments: the cursor belongs to another query")
        if (
            not isinstance(key, int | str)
            or isinstance(key, bool)
            or not isinstance(backward, bool)
        ):
            raise ValueError
    except BadRequestError:
        raise
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError, binascii.Error):
        raise BadRequestError("Bad arguments: malformed cursor") from None
    return key, backward
