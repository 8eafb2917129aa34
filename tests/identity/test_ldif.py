"""The LDIF (RFC 2849) reader and writer of the embedded file directory."""

from __future__ import annotations

import base64

import pytest

from sync_endpoint.identity.ldif import format_entries, parse


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


def test_parse_records_and_multiple_values() -> None:
    """Records are separated by blank lines; names are lower-cased; values keep their order."""
    text = (
        "version: 1\n"
        "\n"
        "dn: cn=g,ou=groups,dc=example,dc=org\n"
        "objectClass: top\n"
        "objectClass: posixGroup\n"
        "cn: g\n"
        "memberUid: alice\n"
        "memberUid: bob\n"
        "\n"
        "\n"
        "dn: uid=alice,ou=people,dc=example,dc=org\n"
        "uid: alice\n"
    )
    assert parse(text) == [
        (
            "cn=g,ou=groups,dc=example,dc=org",
            {"objectclass": ["top", "posixGroup"], "cn": ["g"], "memberuid": ["alice", "bob"]},
        ),
        ("uid=alice,ou=people,dc=example,dc=org", {"uid": ["alice"]}),
    ]


def test_parse_folded_lines() -> None:
    """A line starting with one space continues the previous one (the space is dropped)."""
    text = (
        "dn: uid=alice,ou=peo\n ple,dc=example,dc=org\ncn: Alice\n  Smith\ndescription: a\n b\n c\n"
    )
    [(dn, attrs)] = parse(text)
    assert dn == "uid=alice,ou=people,dc=example,dc=org"
    assert attrs["cn"] == ["Alice Smith"]
    assert attrs["description"] == ["abc"]


def test_parse_base64_values() -> None:
    """`attr:: base64` values (and DNs) are decoded as UTF-8."""
    text = f"dn:: {b64('uid=josé,ou=people,dc=example,dc=org')}\ncn:: {b64('José Müller')}\n"
    [(dn, attrs)] = parse(text)
    assert dn == "uid=josé,ou=people,dc=example,dc=org"
    assert attrs["cn"] == ["José Müller"]


def test_parse_comments() -> None:
    """Comment lines, folded comment lines included, are ignored."""
    text = (
        "# a directory\n"
        "dn: dc=example,dc=org\n"
        "# a comment inside the record,\n"
        " folded onto a second line\n"
        "dc: example\n"
    )
    assert parse(text) == [("dc=example,dc=org", {"dc": ["example"]})]


def test_parse_crlf_and_empty_values() -> None:
    """CRLF line ends are accepted; an empty value is the empty string."""
    assert parse("dn: dc=x\r\ndescription:\r\ncn: y\r\n") == [
        ("dc=x", {"description": [""], "cn": ["y"]})
    ]


@pytest.mark.parametrize(
    "text",
    [
        "dn: dc=x\nnot a pair\n",  # no colon
        "cn: orphan\n",  # attribute before dn
    ],
)
def test_parse_errors(text: str) -> None:
    """Malformed lines and attributes outside a record are ValueErrors."""
    with pytest.raises(ValueError, match=r"LDIF|dn"):
        parse(text)


def test_format_plain_values_stay_readable() -> None:
    """ASCII values are written as `attr: value`, with no `version:` line (slapadd refuses it)."""
    text = format_entries([("dc=example,dc=org", [("objectClass", "top"), ("dc", "example")])])
    assert text.splitlines() == [
        "dn: dc=example,dc=org",
        "objectClass: top",
        "dc: example",
    ]
    assert text.endswith("dc: example\n")


@pytest.mark.parametrize(
    "value",
    ["José", "日本", " leading space", "trailing space ", ":colon", "<angle", "a\nb", "a\rb", "\0"],
)
def test_format_unsafe_values_are_base64(value: str) -> None:
    """Non-ASCII values and unsafe leading/trailing characters are written base64-encoded."""
    text = format_entries([("dc=x", [("cn", value)])])
    assert f"cn:: {b64(value)}" in text.splitlines()


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "José Müller",
        "Ærøskøbing – ünïcödé ✓",
        "emoji 🙂",
        " padded ",
        ":starts with colon",
        "<file:///etc/passwd",
        "line1\nline2",
        "{SSHA}abc+/=",
        "x" * 300,
    ],
)
def test_round_trip(value: str) -> None:
    """What format_entries writes, parse reads back unchanged, non-ASCII values included."""
    dn = "uid=user,ou=people,dc=example,dc=org"
    records = [
        (dn, [("cn", value), ("sn", "Ünïcode"), ("cn", "second")]),
        ("dc=example,dc=org", [("o", value)]),
    ]
    assert parse(format_entries(records)) == [
        (dn, {"cn": [value, "second"], "sn": ["Ünïcode"]}),
        ("dc=example,dc=org", {"o": [value]}),
    ]


def test_round_trip_non_ascii_dn() -> None:
    """A DN with non-ASCII characters survives a round trip."""
    dn = "uid=zoë,ou=people,dc=example,dc=org"
    assert parse(format_entries([(dn, [("uid", "zoë")])])) == [(dn, {"uid": ["zoë"]})]
