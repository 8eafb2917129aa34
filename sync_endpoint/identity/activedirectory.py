"""The Active Directory backend (IDENTITY.md §8), on the connection machinery of identity/ldap.

Login: bind as the user principal name (`alice` → `alice@<domain>`; a login already ending in
`@<domain>` is not suffixed twice), then, on that same connection, search the base DN for
`(&(objectClass=user)(userPrincipalName=<upn>))` (no entry → 401). Groups are every group the
user belongs to, nested ones included: one LDAP_MATCHING_RULE_IN_CHAIN search
`(member:1.2.840.113556.1.4.1941:=<user DN>)`, with a walk through the groups' `memberOf` when
that search is refused or misses a direct group (servers without the rule, groups outside the
base). Each group's name is the CN of its DN; the prefix rule applies; there is no group-base
restriction. The default group is the group DN in `streetAddress`, reported only if held.

User id (IDENTITY §8 quirk, checklist 23): `username:<sAMAccountName>` in privilegesInfo and in
usersInfo alike (falling back to the login, or the UPN, without `@<domain>`), so row ownership
assigned from the user list matches the person on the device whatever form they typed.

The read-only account (SYNC_LDAP_BIND_DN, e.g. `svc-odk@corp.example.org`) is used for the
user list and the readiness probe only; logins never need it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from sync_endpoint.core.models import Principal, UserInfo
from sync_endpoint.core.roles import authorities_from_groups, group_authority
from sync_endpoint.identity.ldap import (
    ConnectionConfig,
    Directory,
    Entry,
    SearchFailed,
    first,
    search,
    usable_login,
)
from sync_endpoint.settings import Settings

logger = logging.getLogger(__name__)

AD_DEFAULTS = ("AUTH_ACTIVE_DIRECTORY", "USER_IS_REGISTERED", "ROLE_USER")
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
MAX_GROUPS = 2000  # safety bound of the memberOf walk
USER_ATTRIBUTES = ("sAMAccountName", "userPrincipalName", "name", "memberOf", "streetAddress")
ALL_USERS = "(&(objectClass=user)(objectClass=organizationalPerson)(userPrincipalName=*))"

_HEX_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})|\\(.)")


def user_principal_name(login: str, domain: str) -> str:
    """`alice` → `alice@corp.example`; a login already ending in `@<domain>` is kept."""
    domain = domain.lower()
    if login.lower().endswith("@" + domain):
        return login
    return f"{login}@{domain}"


def user_filter(upn: str) -> str:
    return f"(&(objectClass=user)(userPrincipalName={escape_filter_chars(upn)}))"


def in_chain_filter(user_dn: str) -> str:
    return f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(user_dn)}))"


def _unescape_dn_value(value: str) -> str:
    """RFC 4514 value escapes (`\\,`, `\\2C`, UTF-8 as `\\C3\\A9`) back to text."""
    out = bytearray()
    position = 0
    for match in _HEX_ESCAPE.finditer(value):
        out += value[position : match.start()].encode()
        if match.group(1) is not None:
            out.append(int(match.group(1), 16))
        else:
            out += match.group(2).encode()
        position = match.end()
    out += value[position:].encode()
    return out.decode("utf-8", "replace")


def common_name(dn: str) -> str | None:
    """The value of a DN's left-most RDN (`CN=default_prefix x,OU=…` → `default_prefix x`)."""
    try:
        parts = parse_dn(dn)
    except (ldap_errors.LDAPException, ValueError, IndexError):
        return None
    if not parts:
        return None
    return _unescape_dn_value(parts[0][1]).strip()


def user_id_of(attrs: dict[str, list[str]], fallback: str, domain: str) -> str:
    """sAMAccountName, else the fallback (login or UPN) without its `@<domain>`."""
    account = first(attrs.get("samaccountname"))
    if account:
        return account
    suffix = "@" + domain.lower()
    if fallback.lower().endswith(suffix):
        return fallback[: -len(suffix)]
    return fallback


def expand(direct: Iterable[str], parents: dict[str, list[str]]) -> list[str]:
    """Transitive closure of group DNs over a {group DN (lower): [its memberOf]} map."""
    seen: dict[str, str] = {}
    queue = list(direct)
    while queue and len(seen) < MAX_GROUPS:
        dn = queue.pop()
        key = dn.lower()
        if key in seen:
            continue
        seen[key] = dn
        queue.extend(parents.get(key, []))
    return list(seen.values())


def walk_member_of(conn: Any, direct: Sequence[str]) -> list[str]:
    """Nested groups by reading each group's memberOf, breadth first (a fallback)."""
    seen: dict[str, str] = {}
    queue = list(direct)
    while queue:
        dn = queue.pop(0)
        if dn.lower() in seen:
            continue
        if len(seen) >= MAX_GROUPS:
            logger.warning("memberOf walk stopped after %d groups", MAX_GROUPS)
            break
        seen[dn.lower()] = dn
        entries = search(
            conn, dn, "(objectClass=*)", ldap3.BASE, ["memberOf"], paged=False, missing_ok=True
        )
        for _, attrs in entries:
            queue.extend(attrs.get("memberof", []))
    return list(seen.values())


def nested_groups(conn: Any, base_dn: str, user_dn: str, direct: Sequence[str]) -> list[str]:
    """All groups of a user, nested ones included (IN_CHAIN search, memberOf walk fallback)."""
    try:
        entries = search(conn, base_dn, in_chain_filter(user_dn), ldap3.SUBTREE, ["cn"])
    except SearchFailed as exc:
        logger.info("in-chain group search refused (%s); walking memberOf instead", exc)
        return walk_member_of(conn, direct)
    found = [dn for dn, _ in entries]
    known = {dn.lower() for dn in found}
    if all(dn.lower() in known for dn in direct):
        return found
    # Some direct group is missing: no in-chain support, or groups outside the base.
    walked = walk_member_of(conn, direct)
    return found + [dn for dn in walked if dn.lower() not in known]


class ActiveDirectoryIdentityProvider:
    """IdentityProvider over Active Directory (§8)."""

    def __init__(self, directory: Directory, *, domain: str, base_dn: str, prefix: str) -> None:
        self.directory = directory
        self.domain = domain.lower()
        self.base_dn = base_dn
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> ActiveDirectoryIdentityProvider:
        return cls(
            Directory(ConnectionConfig.from_settings(settings, settings.effective_ad_url)),
            domain=settings.effective_ad_domain,
            base_dn=settings.effective_ad_base_dn,
            prefix=settings.group_prefix,
        )

    async def authenticate(self, login: str, password: str) -> Principal | None:
        if not usable_login(login) or not password:
            return None
        upn = user_principal_name(login, self.domain)
        op = partial(self._principal, upn, login)
        return await asyncio.to_thread(self.directory.run_as_user, upn, password, op)

    def _principal(self, upn: str, login: str, conn: Any) -> Principal | None:
        entries = search(conn, self.base_dn, user_filter(upn), ldap3.SUBTREE, USER_ATTRIBUTES)
        if not entries:
            logger.info("bind as %s succeeded but no user entry has that UPN", upn)
            return None
        dn, attrs = entries[0]
        return self.principal_from(conn, dn, attrs, login)

    def principal_from(
        self, conn: Any, dn: str, attrs: dict[str, list[str]], login: str
    ) -> Principal:
        group_dns = nested_groups(conn, self.base_dn, dn, attrs.get("memberof", []))
        names = [name for name in map(common_name, group_dns) if name]
        authorities = authorities_from_groups(names, self.prefix, AD_DEFAULTS)
        user_id = user_id_of(attrs, login, self.domain)
        return Principal(
            login=user_id,
            user_id=f"username:{user_id}",
            full_name=user_id,
            authorities=authorities,
            default_group=self.default_group(attrs, authorities),
        )

    def default_group(self, attrs: dict[str, list[str]], authorities: frozenset[str]) -> str | None:
        """§6: the group whose DN is in streetAddress, if the user holds it."""
        street = first(attrs.get("streetaddress"))
        name = common_name(street) if street and "=" in street else None
        authority = group_authority(name, self.prefix) if name else None
        return authority if authority is not None and authority in authorities else None

    async def list_users(self) -> list[UserInfo]:
        return await self.directory.lookup(self.users_from)

    def users_from(self, conn: Any) -> list[UserInfo]:
        """Every user with a UPN and at least one accepted group, nesting resolved offline."""
        groups: list[Entry] = search(
            conn, self.base_dn, "(objectClass=group)", ldap3.SUBTREE, ["memberOf"]
        )
        parents = {dn.lower(): attrs.get("memberof", []) for dn, attrs in groups}
        users = []
        for _, attrs in search(conn, self.base_dn, ALL_USERS, ldap3.SUBTREE, USER_ATTRIBUTES):
            names = [
                name
                for name in map(common_name, expand(attrs.get("memberof", []), parents))
                if name
            ]
            roles = authorities_from_groups(names, self.prefix, AD_DEFAULTS)
            if not roles:
                continue
            upn = first(attrs.get("userprincipalname")) or ""
            user_id = user_id_of(attrs, upn, self.domain)
            full_name = first(attrs.get("name")) or user_id
            users.append(UserInfo(f"username:{user_id}", full_name, tuple(sorted(roles))))
        return users

    async def ping(self) -> None:
        def probe(conn: Any) -> None:
            search(conn, self.base_dn, "(objectClass=*)", ldap3.BASE, ["1.1"], paged=False)

        await self.directory.lookup(probe)

    async def close(self) -> None:
        await self.directory.close()
