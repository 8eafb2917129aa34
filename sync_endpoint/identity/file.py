"""The embedded `file` directory (DECISIONS D13): the LDAP layout, kept in an LDIF file.

People are `uid=<login>,ou=people,<base>` entries (inetOrgPerson + posixAccount) with a hashed
userPassword and a gidNumber (the default group); groups are posixGroups
`gidNumber=<n>,ou=<prefix>,ou=groups,<base>` named `<prefix> <name>` with memberUid logins.
The same file can be loaded into OpenLDAP with `slapadd`/`ldapadd` unchanged. The server
re-reads the file when it changes, so `sync-endpoint users add` takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sync_endpoint.core.models import Principal, UserInfo
from sync_endpoint.core.roles import authorities_from_groups, group_authority
from sync_endpoint.identity import ldif
from sync_endpoint.identity.passwords import hash_password, verify_password

BACKEND_DEFAULTS = ("AUTH_LOCAL", "USER_IS_REGISTERED", "ROLE_USER")

#: gidNumbers of the bootstrap groups (IDENTITY.md §2.2); new groups are numbered after them.
BOOTSTRAP_GROUPS = (
    (500, "site_admins"),
    (501, "administer_tables"),
    (502, "super_user_tables"),
    (503, "synchronize_tables"),
    (504, "form_managers"),
    (505, "data_viewers"),
    (506, "data_collectors"),
)


@dataclass
class DirUser:
    uid: str
    password_hash: str
    gid_number: int | None
    given_name: str
    uid_number: int


@dataclass
class DirGroup:
    gid_number: int
    cn: str
    members: list[str] = field(default_factory=list)


@dataclass
class Directory:
    """The whole directory in memory; small by nature (an evaluation set-up)."""

    base_dn: str
    prefix: str
    users: dict[str, DirUser] = field(default_factory=dict)  # keyed by lower-cased uid
    groups: list[DirGroup] = field(default_factory=list)

    @classmethod
    def empty(cls, base_dn: str, prefix: str) -> Directory:
        groups = [DirGroup(gid, f"{prefix} {name}") for gid, name in BOOTSTRAP_GROUPS]
        return cls(base_dn, prefix, {}, groups)

    @classmethod
    def from_ldif(cls, text: str, base_dn: str, prefix: str) -> Directory:
        directory = cls(base_dn, prefix)
        for _dn, attrs in ldif.parse(text):
            classes = {c.lower() for c in attrs.get("objectclass", [])}
            if "posixaccount" in classes and attrs.get("uid"):
                uid = attrs["uid"][0]
                directory.users[uid.lower()] = DirUser(
                    uid=uid,
                    password_hash=(attrs.get("userpassword") or [""])[0],
                    gid_number=_int_or_none((attrs.get("gidnumber") or [""])[0]),
                    given_name=(attrs.get("givenname") or attrs.get("cn") or [uid])[0],
                    uid_number=_int_or_none((attrs.get("uidnumber") or [""])[0]) or 0,
                )
            elif "posixgroup" in classes and attrs.get("cn") and attrs.get("gidnumber"):
                gid = _int_or_none(attrs["gidnumber"][0])
                if gid is not None:
                    directory.groups.append(
                        DirGroup(gid, attrs["cn"][0], list(attrs.get("memberuid", [])))
                    )
        return directory

    def to_ldif(self) -> str:
        base = self.base_dn
        first_rdn = base.split(",")[0]
        attr, _, value = first_rdn.partition("=")
        records: list[tuple[str, list[tuple[str, str]]]] = [
            (
                base,
                [
                    ("objectClass", "top"),
                    ("objectClass", "dcObject"),
                    ("objectClass", "organization"),
                    (attr.strip(), value.strip()),
                    ("o", "ODK-X Sync Endpoint"),
                ],
            ),
            (f"ou=people,{base}", [("objectClass", "organizationalUnit"), ("ou", "people")]),
            (f"ou=groups,{base}", [("objectClass", "organizationalUnit"), ("ou", "groups")]),
            (
                f"ou={self.prefix},ou=groups,{base}",
                [("objectClass", "organizationalUnit"), ("ou", self.prefix)],
            ),
        ]
        for group in sorted(self.groups, key=lambda g: g.gid_number):
            pairs = [
                ("objectClass", "top"),
                ("objectClass", "posixGroup"),
                ("cn", group.cn),
                ("gidNumber", str(group.gid_number)),
            ]
            pairs += [("memberUid", member) for member in group.members]
            records.append(
                (f"gidNumber={group.gid_number},ou={self.prefix},ou=groups,{base}", pairs)
            )
        for user in sorted(self.users.values(), key=lambda u: u.uid_number):
            pairs = [
                ("objectClass", "top"),
                ("objectClass", "inetOrgPerson"),
                ("objectClass", "posixAccount"),
                ("uid", user.uid),
                ("cn", user.given_name),
                ("sn", user.given_name),
                ("givenName", user.given_name),
                ("uidNumber", str(user.uid_number)),
                ("gidNumber", str(user.gid_number if user.gid_number is not None else 0)),
                ("homeDirectory", f"/home/users/{user.uid}"),
                ("userPassword", user.password_hash),
            ]
            records.append((f"uid={user.uid},ou=people,{base}", pairs))
        return ldif.format_entries(records)

    # -- queries ---------------------------------------------------------------------------

    def group_names_of(self, uid: str) -> list[str]:
        return [g.cn for g in self.groups if uid.lower() in (m.lower() for m in g.members)]

    def principal(self, user: DirUser) -> Principal:
        authorities = authorities_from_groups(
            self.group_names_of(user.uid), self.prefix, BACKEND_DEFAULTS
        )
        default_group = None
        for group in self.groups:
            if group.gid_number == user.gid_number:
                candidate = group_authority(group.cn, self.prefix)
                if candidate in authorities:
                    default_group = candidate
                break
        return Principal(
            login=user.uid,
            user_id=f"username:{user.uid}",
            full_name=user.uid,
            authorities=authorities,
            default_group=default_group,
        )

    # -- changes (CLI) ---------------------------------------------------------------------

    def add_user(self, uid: str, password: str, group_names: Sequence[str]) -> None:
        """Create or replace a user; the first group is the default group."""
        if not group_names:
            raise ValueError("give at least one --group (a user in no group cannot sign in)")
        if uid.lower() in self.users:
            self.remove_user(uid)
        gids = [self._group(name).gid_number for name in group_names]
        for name in group_names:
            self._group(name).members.append(uid)
        numbers = [u.uid_number for u in self.users.values()]
        self.users[uid.lower()] = DirUser(
            uid=uid,
            password_hash=hash_password(password),
            gid_number=gids[0],
            given_name=uid,
            uid_number=max([1000, *numbers]) + 1,
        )

    def remove_user(self, uid: str) -> bool:
        user = self.users.pop(uid.lower(), None)
        for group in self.groups:
            group.members = [m for m in group.members if m.lower() != uid.lower()]
        return user is not None

    def _group(self, name: str) -> DirGroup:
        """Find a group by short name (`synchronize_tables`) or full cn; create custom ones."""
        short = name.strip()
        if short.lower().startswith(self.prefix.lower() + " "):
            short = short[len(self.prefix) + 1 :]
        wanted = group_authority(f"{self.prefix} {short}", self.prefix)
        for group in self.groups:
            if group_authority(group.cn, self.prefix) == wanted:
                return group
        gid = max([506, *(g.gid_number for g in self.groups)]) + 1
        group = DirGroup(gid, f"{self.prefix} {short}")
        self.groups.append(group)
        return group


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class DirectoryFile:
    """Reads and atomically rewrites the directory file, under an exclusive file lock."""

    def __init__(self, path: Path, base_dn: str, prefix: str) -> None:
        self.path = path
        self.base_dn = base_dn
        self.prefix = prefix

    def load(self) -> Directory:
        if not self.path.exists():
            return Directory.empty(self.base_dn, self.prefix)
        text = self.path.read_text(encoding="utf-8")
        return Directory.from_ldif(text, self.base_dn, self.prefix)

    @contextmanager
    def editing(self) -> Iterator[Directory]:
        """Load, let the caller change, then save atomically; serialised across processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            directory = self.load()
            yield directory
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".directory-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(directory.to_ldif())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)


class FileIdentityProvider:
    """IdentityProvider over the directory file, reloaded when its mtime changes."""

    def __init__(self, source: DirectoryFile) -> None:
        self.source = source
        self._directory: Directory | None = None
        self._stamp: tuple[int, ...] | None = None

    def _current(self) -> Directory:
        try:
            stat = self.source.path.stat()
            # The inode too: every save replaces the file, even within one mtime tick.
            stamp: tuple[int, ...] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if self._directory is None or stamp != self._stamp:
            self._directory = self.source.load()
            self._stamp = stamp
        return self._directory

    async def authenticate(self, login: str, password: str) -> Principal | None:
        directory = await asyncio.to_thread(self._current)
        user = directory.users.get(login.lower())
        if user is None:
            # Spend the same time as a real check, so user names cannot be probed by timing.
            verify_password(password, "{SSHA}" + "A" * 28)
            return None
        if not verify_password(password, user.password_hash):
            return None
        return directory.principal(user)

    async def list_users(self) -> list[UserInfo]:
        directory = await asyncio.to_thread(self._current)
        users = []
        for user in directory.users.values():
            principal = directory.principal(user)
            if principal.authorities:
                users.append(
                    UserInfo(
                        principal.user_id, user.given_name, tuple(sorted(principal.authorities))
                    )
                )
        return sorted(users, key=lambda u: u.user_id)

    async def ping(self) -> None:
        await asyncio.to_thread(self._current)

    async def close(self) -> None:
        return None
