"""The test directory for the LDAP backend: ldap/bootstrap.ldif's layout plus the people of
IDENTITY.md §13 and the awkward cases of §15, written as one LDIF for `slapadd -n 1`.

| login | where / password | groups (memberUid) | gidNumber |
|---|---|---|---|
| alice | ou=people / s3cret | 503, 507 region-north (+ 2 groups outside the base) | 507 |
| bob | ou=people / bob-pw | 500 site_admins | 500 |
| carol | ou=people / carol-pw | none | 503 |
| dave | ou=contractors (outside ou=people) / dave-pw | 503 | 503 |
| ghost | no entry at all (dangling memberUid) | 503 | - |
| gina | ou=people / gina-pw | 503, 507 | 503 |
| hank | ou=people / hank-pw | 503 | 500 (not a member) |
| ivy | ou=people / ivy-pw | 503 | 999 (no such group) |
| judy | inetOrgPerson only, no gidNumber / judy-pw | 503 | - |
| Kim | uid stored with a capital / kim-pw | 503 (memberUid Kim) | 503 |
| lena | ou=people / lena-pw | "DEFAULT_PREFIX Site Admins", "default_prefix_region" | 509 |
| m500 … m506 | ou=people / m-pw | exactly that bootstrap group | that group |
| star* | ou=people / star-pw | 503 (memberUid `star*`) | 503 |
| starlet | ou=people / starlet-pw | 508 starred | 508 |
| mal)(memberUid=* | ou=people / mal-pw | none | 503 |
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ldap3.utils.dn import escape_rdn

from sync_endpoint.identity import ldif
from tests.services.slapd import SLAPPASSWD

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "ldap" / "bootstrap.ldif"
BASE_DN = "dc=example,dc=org"
READONLY_DN = f"cn=readonly,{BASE_DN}"
READONLY_PASSWORD = "readonly-pw"
GROUPS = f"ou=default_prefix,ou=groups,{BASE_DN}"

PASSWORDS = {
    "alice": "s3cret",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "gina": "gina-pw",
    "hank": "hank-pw",
    "ivy": "ivy-pw",
    "Kim": "kim-pw",
    "lena": "lena-pw",
    "star*": "star-pw",
    "starlet": "starlet-pw",
    "mal)(memberUid=*": "mal-pw",
    **{f"m{gid}": "m-pw" for gid in range(500, 507)},
}
GIVEN_NAMES = {"alice": "Alice", "bob": "Bob"}
USER_GIDS = {
    "alice": 507, "bob": 500, "carol": 503, "gina": 503, "hank": 500, "ivy": 999,
    "Kim": 503, "lena": 509, "star*": 503, "starlet": 508, "mal)(memberUid=*": 503,
    **{f"m{gid}": gid for gid in range(500, 507)},
}  # fmt: skip
MEMBERS = {
    500: ["bob", "m500"],
    501: ["m501"],
    502: ["m502"],
    503: ["alice", "dave", "ghost", "gina", "hank", "ivy", "judy", "Kim", "m503", "star*"],
    504: ["m504"],
    505: ["m505"],
    506: ["m506"],
}
EXTRA_GROUPS = {
    507: ("default_prefix region-north", ["alice", "gina"]),
    508: ("default_prefix starred", ["starlet"]),
    509: ("DEFAULT_PREFIX Site Admins", ["lena"]),
    510: ("default_prefix_region", ["lena"]),  # underscore: no prefix match
}

Record = tuple[str, list[tuple[str, str]]]


def hash_password(password: str) -> str:
    return subprocess.run(
        [str(SLAPPASSWD), "-s", password], capture_output=True, text=True, check=True
    ).stdout.strip()


def _person(dn: str, uid: str, password: str, gid: int | None) -> Record:
    pairs = [("objectClass", "top"), ("objectClass", "inetOrgPerson")]
    if gid is not None:
        pairs.append(("objectClass", "posixAccount"))
    pairs += [("uid", uid), ("cn", uid), ("sn", uid)]
    if uid in GIVEN_NAMES:
        pairs.append(("givenName", GIVEN_NAMES[uid]))
    if gid is not None:
        pairs += [
            ("uidNumber", str(1000 + len(uid) * 7 + sum(map(ord, uid)))),
            ("gidNumber", str(gid)),
            ("homeDirectory", f"/home/users/{escape_rdn(uid)}"),
        ]
    pairs.append(("userPassword", hash_password(password)))
    return dn, pairs


def _group(dn: str, cn: str, gid: int, members: list[str]) -> Record:
    pairs = [("objectClass", "top"), ("objectClass", "posixGroup"), ("cn", cn)]
    pairs += [("gidNumber", str(gid))] + [("memberUid", m) for m in members]
    return dn, pairs


def root_records() -> list[Record]:
    """The root entry and the read-only lookup account: what precedes ldap/bootstrap.ldif."""
    return [
        (
            BASE_DN,
            [
                ("objectClass", "top"),
                ("objectClass", "dcObject"),
                ("objectClass", "organization"),
                ("dc", "example"),
                ("o", "Open Data Kit"),
            ],
        ),
        (
            READONLY_DN,
            [
                ("objectClass", "top"),
                ("objectClass", "organizationalRole"),
                ("objectClass", "simpleSecurityObject"),
                ("cn", "readonly"),
                ("userPassword", hash_password(READONLY_PASSWORD)),
            ],
        ),
    ]


def directory_ldif() -> str:
    """The whole test directory as LDIF (root entry first, as slapadd needs)."""
    records = root_records()
    for dn, attrs in ldif.parse(BOOTSTRAP.read_text(encoding="utf-8")):
        pairs = [(name, value) for name, values in attrs.items() for value in values]
        gid = int(attrs["gidnumber"][0]) if "gidnumber" in attrs else None
        if gid is not None:
            pairs += [("memberUid", m) for m in MEMBERS.get(gid, [])]
        records.append((dn, pairs))
    for gid, (cn, members) in EXTRA_GROUPS.items():
        records.append(_group(f"gidNumber={gid},{GROUPS}", cn, gid, members))
    # Outside the group base: never seen, even when the name is prefixed (§2.4).
    records.append(_group(f"cn=staff,ou=groups,{BASE_DN}", "staff", 600, ["alice"]))
    records.append(
        _group(f"cn=decoy,ou=groups,{BASE_DN}", "default_prefix site_admins", 601, ["alice"])
    )
    for uid, password in PASSWORDS.items():
        records.append(
            _person(f"uid={escape_rdn(uid)},ou=people,{BASE_DN}", uid, password, USER_GIDS[uid])
        )
    records.append(_person(f"uid=judy,ou=people,{BASE_DN}", "judy", "judy-pw", None))
    records.append(
        (
            f"ou=contractors,{BASE_DN}",
            [("objectClass", "organizationalUnit"), ("ou", "contractors")],
        )
    )
    records.append(_person(f"uid=dave,ou=contractors,{BASE_DN}", "dave", "dave-pw", 503))
    return ldif.format_entries(records)
