"""userPassword hashes in the schemes OpenLDAP understands ({SSHA} written, several read)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_DIGESTS = {
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "SHA256": ("sha256", False),
    "SSHA256": ("sha256", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
    "MD5": ("md5", False),
    "SMD5": ("md5", True),
}


def hash_password(password: str) -> str:
    """A salted SHA-1 `{SSHA}` value, the scheme slappasswd and phpLDAPadmin write."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a `{SCHEME}value` userPassword; unknown schemes never match."""
    if not stored.startswith("{") or "}" not in stored:
        return False
    scheme, _, value = stored[1:].partition("}")
    scheme = scheme.upper()
    if scheme == "CLEARTEXT":
        return hmac.compare_digest(password.encode(), value.encode())
    if scheme not in _DIGESTS:
        return False
    algorithm, salted = _DIGESTS[scheme]
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return False
    size = hashlib.new(algorithm).digest_size
    digest, salt = raw[:size], raw[size:] if salted else b""
    candidate = hashlib.new(algorithm, password.encode() + salt).digest()
    return hmac.compare_digest(candidate, digest)
