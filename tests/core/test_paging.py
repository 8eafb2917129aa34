"""Opaque cursors bound to their query (DECISIONS D8, SYNC_PROTOCOL §2.8): 400, never 500."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re

import pytest

from sync_endpoint.core.paging import PageRequest, decode_cursor, encode_cursor
from sync_endpoint.errors import BadRequestError

QUERY = "rows:app/census"


def forge(body: bytes) -> str:
    """A token with a *correct* integrity digest around an arbitrary body.

    The digest is unkeyed, so anyone can build these; decoding must still never fail with
    anything but BadRequestError.
    """
    digest = hashlib.blake2s(body, digest_size=6).hexdigest().encode()
    return base64.urlsafe_b64encode(body + b"|" + digest).decode().rstrip("=")


@pytest.mark.parametrize("key", [0, 1, -5, 2**62, "", "uuid:row-1", "é 🙂 |", "a" * 300])
@pytest.mark.parametrize("backward", [False, True])
def test_round_trip(key: int | str, backward: bool) -> None:
    """A cursor decodes, for its own query, to the key and direction it was made from."""
    token = encode_cursor(QUERY, key, backward)
    assert decode_cursor(QUERY, token) == (key, backward)


def test_tokens_are_url_safe_without_padding() -> None:
    """Tokens use only the URL-safe Base64 alphabet, without `=` padding."""
    for key in (1, "x", "é" * 7, "a" * 11):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", encode_cursor(QUERY, key))


def test_default_page_request_is_the_first_page() -> None:
    """A page request without a key starts at the beginning, forwards."""
    request = PageRequest(limit=10)
    assert (request.key, request.backward) == (None, False)


def test_cursor_of_another_query_is_400() -> None:
    """A cursor made by a different query is a 400 (quirk 8.14: REF answers 500)."""
    token = encode_cursor("rows:app/other", 5)
    with pytest.raises(BadRequestError, match="another query"):
        decode_cursor(QUERY, token)


def test_tampered_key_is_400() -> None:
    """Changing the key inside a cursor without fixing the digest is a 400."""
    token = encode_cursor(QUERY, 42)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    tampered = raw.replace(b'"k":42', b'"k":43')
    assert tampered != raw
    with pytest.raises(BadRequestError):
        decode_cursor(QUERY, base64.urlsafe_b64encode(tampered).decode().rstrip("="))


def test_every_single_character_change_is_400_or_harmless() -> None:
    """Replacing any one character is a 400, or (padding bits) decodes to the same position."""
    token = encode_cursor(QUERY, "uuid:row-7", True)
    for index in range(len(token)):
        for replacement in "A_-9z":
            if token[index] == replacement:
                continue
            variant = token[:index] + replacement + token[index + 1 :]
            with contextlib.suppress(BadRequestError):
                assert decode_cursor(QUERY, variant) == ("uuid:row-7", True)


GARBAGE = [
    "",
    "=",
    "====",
    "a",
    "ab",
    "abc",
    "!!!!",
    "%%",
    "@@@@",
    "\x00",
    "é",
    "🙂🙂🙂🙂",
    "H4sIAAAAAAAAAA",
    "null",
    "eyJ9",
    "a" * 5000,
    base64.urlsafe_b64encode(b"no digest here").decode(),
    base64.urlsafe_b64encode(b'{"q":"rows:app/census","k":1,"b":false}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\xfd|\xff\xfe").decode(),
]

FORGED_BODIES = [
    b"",
    b"[]",
    b"{}",
    b"null",
    b"1",
    b'"s"',
    b"\xff\xfe",
    b"not json",
    b'{"q":"rows:app/census"}',
    b'{"q":"rows:app/census","k":1}',
    b'{"q":"rows:app/census","b":false}',
    b'{"q":"rows:app/census","k":1.5,"b":false}',
    b'{"q":"rows:app/census","k":true,"b":false}',
    b'{"q":"rows:app/census","k":null,"b":false}',
    b'{"q":"rows:app/census","k":[1],"b":false}',
    b'{"q":"rows:app/census","k":{},"b":false}',
    b'{"q":"rows:app/census","k":1,"b":"no"}',
    b'{"q":"rows:app/census","k":1,"b":0}',
    b'{"q":"rows:app/census","k":1e999,"b":false}',
    b'{"q":"rows:app/census","k":' + b"9" * 5000 + b',"b":false}',
    b'{"q":["rows:app/census"],"k":1,"b":false}',
]


@pytest.mark.parametrize("token", GARBAGE + [forge(body) for body in FORGED_BODIES])
def test_malformed_cursor_is_400(token: str) -> None:
    """Garbage, empty, undecodable or ill-typed cursors raise BadRequestError only."""
    with pytest.raises(BadRequestError):
        decode_cursor(QUERY, token)


def test_padding_and_junk_variants_never_raise_anything_else() -> None:
    """Padding added or removed, or junk around a cursor, is a 400 or the same position."""
    # Base64 decoding here ignores characters outside its alphabet and surplus padding, so some
    # variants decode to the identical, digest-checked payload; none may raise another type.
    token = encode_cursor(QUERY, 42)
    variants = [
        token + "=",
        token + "==",
        token + "===",
        "=" + token,
        token[:4] + "=" + token[4:],
        token[:-1],
        token[:-2],
        token[1:],
        token + "A",
        token + "AA",
        token + "!",
        token + "+/",
        " " + token,
        token + "\n",
        token.upper(),
        token.lower(),
    ]
    for variant in variants:
        with contextlib.suppress(BadRequestError):
            assert decode_cursor(QUERY, variant) == (42, False), variant


def test_deeply_nested_cursor_is_400() -> None:
    """A cursor whose body nests JSON deeper than the parser allows is a 400, not a 500."""
    body = b'{"q":"rows:app/census","k":' + b"[" * 1200 + b"]" * 1200 + b',"b":false}'
    token = forge(body)
    assert len(token) < 4000
    with pytest.raises(BadRequestError):
        decode_cursor(QUERY, token)


def test_cursor_body_is_json_with_query_key_and_direction() -> None:
    """Sanity check of `forge`: a forged well-formed body is accepted like a real cursor."""
    body = json.dumps({"q": QUERY, "k": "row-3", "b": True}, separators=(",", ":")).encode()
    assert decode_cursor(QUERY, forge(body)) == ("row-3", True)
