"""From directory groups to authorities (IDENTITY.md §4), shared by every identity backend."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

SYNC = "ROLE_SYNCHRONIZE_TABLES"
ADMIN = "ROLE_ADMINISTER_TABLES"
SUPER_USER = "ROLE_SUPER_USER_TABLES"
SITE_ADMIN = "ROLE_SITE_ACCESS_ADMIN"
USER = "ROLE_USER"

WELL_KNOWN = {
    "GROUP_SITE_ADMINS": SITE_ADMIN,
    "GROUP_ADMINISTER_TABLES": ADMIN,
    "GROUP_SUPER_USER_TABLES": SUPER_USER,
    "GROUP_SYNCHRONIZE_TABLES": SYNC,
    "GROUP_FORM_MANAGERS": "ROLE_DATA_OWNER",
    "GROUP_DATA_VIEWERS": "ROLE_DATA_VIEWER",
    "GROUP_DATA_COLLECTORS": "ROLE_DATA_COLLECTOR",
}

IMPLIED = {
    SITE_ADMIN: {
        ADMIN,
        SUPER_USER,
        SYNC,
        "ROLE_DATA_OWNER",
        "ROLE_DATA_VIEWER",
        "ROLE_DATA_COLLECTOR",
    },
    ADMIN: {SUPER_USER, SYNC},
    SUPER_USER: {SYNC},
    "ROLE_DATA_OWNER": {"ROLE_DATA_VIEWER"},
}

#: Roles whose holders see the full user list in usersInfo (§5.16.4).
USER_LIST_ROLES = frozenset({SITE_ADMIN, ADMIN, SUPER_USER})

_SEPARATORS = re.compile("[" + re.escape(string.whitespace + string.punctuation) + "]+")


def group_authority(name: str, prefix: str) -> str | None:
    """Normalise one directory group name; None when it lacks the `<prefix> ` (one space)."""
    upper, upper_prefix = name.upper(), prefix.upper()
    if upper_prefix:
        if not upper.startswith(upper_prefix + " "):
            return None
        upper = upper[len(upper_prefix) + 1 :]
    authority = "GROUP_" + _SEPARATORS.sub("_", upper)
    return WELL_KNOWN.get(authority, authority)


def authorities_from_groups(
    names: Iterable[str], prefix: str, backend_defaults: Iterable[str]
) -> frozenset[str]:
    """Apply §4.1 to every group, add implied roles, then the backend's defaults if any."""
    found: set[str] = set()
    for name in names:
        authority = group_authority(name, prefix)
        if authority is not None:
            found.add(authority)
    for role in list(found):
        found |= IMPLIED.get(role, set())
    if found:
        found |= set(backend_defaults)
    return frozenset(found)


ATTACHMENT_VIEWER = "ROLE_ATTACHMENT_VIEWER"


def anonymous_authorities(
    anonymous_sync: bool, anonymous_attachment_access: bool = False
) -> frozenset[str]:
    """IDENTITY §10: always USER_IS_ANONYMOUS; ROLE_USER + the sync role when anonymous sync is
    on; ROLE_ATTACHMENT_VIEWER when anonymous attachment access is on (it grants nothing under
    /odktables, where attachments need the sync role: reference compatibility only)."""
    base = {"USER_IS_ANONYMOUS"}
    if anonymous_sync:
        base |= {USER, SYNC}
    if anonymous_attachment_access:
        base.add(ATTACHMENT_VIEWER)
    return frozenset(base)
