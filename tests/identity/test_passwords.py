"""userPassword hashes in OpenLDAP's schemes: {SSHA} written, several read."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest

from sync_endpoint.identity.passwords import hash_password, verify_password

SLAPPASSWD = Path("/usr/sbin/slappasswd")


def scheme(name: str, algorithm: str, password: str, salt: bytes = b"") -> str:
    """`{NAME}` + base64(digest(password + salt) + salt), as OpenLDAP writes them."""
    digest = hashlib.new(algorithm, password.encode() + salt).digest()
    return "{" + name + "}" + base64.b64encode(digest + salt).decode()


def test_ssha_round_trip() -> None:
    """A hash we write verifies its password; a wrong password fails."""
    stored = hash_password("correct horse")
    assert stored.startswith("{SSHA}")
    assert len(base64.b64decode(stored[len("{SSHA}") :])) == 20 + 8  # SHA-1 + 8-byte salt
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)


def test_hashes_are_salted() -> None:
    """Two hashes of the same password differ, and both verify."""
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert verify_password("pw", first)
    assert verify_password("pw", second)


def test_non_ascii_password() -> None:
    """Passwords are hashed as UTF-8."""
    assert verify_password("pässwörd✓", hash_password("pässwörd✓"))
    assert not verify_password("passwoerd", hash_password("pässwörd✓"))


@pytest.mark.parametrize(
    ("name", "algorithm", "salt"),
    [
        ("SHA", "sha1", b""),
        ("SSHA", "sha1", b"saltsalt"),
        ("SHA256", "sha256", b""),
        ("SSHA256", "sha256", b"\x00\x01\x02\x03"),
        ("SHA512", "sha512", b""),
        ("SSHA512", "sha512", b"0123456789abcdef"),
        ("MD5", "md5", b""),
        ("SMD5", "md5", b"salt"),
    ],
)
def test_digest_schemes_verify(name: str, algorithm: str, salt: bytes) -> None:
    """{SHA}, {SSHA}, {SHA256}, {SSHA256}, {SHA512}, {SSHA512}, {MD5}, {SMD5} verify."""
    stored = scheme(name, algorithm, "secret", salt)
    assert verify_password("secret", stored)
    assert not verify_password("Secret", stored)


def test_known_sha_value() -> None:
    """The {SHA} of "secret" that slappasswd prints verifies."""
    assert verify_password("secret", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=")


def test_scheme_names_are_case_insensitive() -> None:
    """`{ssha}` is the same scheme as `{SSHA}`."""
    stored = hash_password("pw")
    assert verify_password("pw", "{ssha}" + stored[len("{SSHA}") :])


def test_cleartext() -> None:
    """{CLEARTEXT} compares the password itself."""
    assert verify_password("secret", "{CLEARTEXT}secret")
    assert not verify_password("secret2", "{CLEARTEXT}secret")
    assert not verify_password("", "{CLEARTEXT}secret")


@pytest.mark.parametrize(
    "stored",
    [
        "{CRYPT}$6$salt$abcdef",
        "{PBKDF2}secret",
        "{ARGON2}secret",
        "{UNKNOWN}secret",
        "{}secret",
        "secret",  # no scheme: never compared as clear text
        "",
        "{SSHA",
        "{SSHA}not base64!",
        "{SHA}",
    ],
)
def test_unknown_or_malformed_never_match(stored: str) -> None:
    """Unknown schemes, values without a scheme and malformed hashes never match."""
    assert not verify_password("secret", stored)
    assert not verify_password("", stored)


@pytest.mark.parametrize("hash_scheme", ["{SSHA}", "{SHA}", "{SMD5}", "{MD5}"])
def test_value_from_real_slappasswd(hash_scheme: str) -> None:
    """A hash made by OpenLDAP's own `slappasswd -s secret` verifies."""
    if not SLAPPASSWD.exists():
        pytest.skip(f"{SLAPPASSWD} is absent (Debian package slapd)")
    result = subprocess.run(
        [str(SLAPPASSWD), "-h", hash_scheme, "-s", "secret"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    stored = result.stdout.strip()
    assert stored.startswith(hash_scheme)
    assert verify_password("secret", stored)
    assert not verify_password("secret ", stored)


def test_value_from_default_slappasswd() -> None:
    """`slappasswd -s secret` with its default scheme produces a value we verify."""
    if not SLAPPASSWD.exists():
        pytest.skip(f"{SLAPPASSWD} is absent (Debian package slapd)")
    stored = subprocess.run(
        [str(SLAPPASSWD), "-s", "secret"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert verify_password("secret", stored)
    assert not verify_password("wrong", stored)
