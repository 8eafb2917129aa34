"""All settings in one frozen object, loaded once from the environment and an env file.

Precedence: process environment > env file > default. Every key is `SYNC_<NAME>`; secrets may
instead be given as `SYNC_<NAME>_FILE` (a path, e.g. a Docker secret). Unknown `SYNC_*` keys and
invalid values fail at start-up with a message naming the key, so a typo never goes unnoticed.
This is the only module that reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sync_endpoint.errors import ConfigError

PREFIX = "SYNC_"
TEST_PREFIX = "SYNC_TEST_"


class Secret:
    """A string that never shows itself in logs, reprs or `check-config` output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Field docs are mirrored in config/sync.env.example."""

    data_dir: Path = Path("data")
    database_url: Secret = field(default_factory=lambda: Secret(""))
    host: str = "127.0.0.1"
    port: int = 8080
    app_ids: tuple[str, ...] = ("default",)
    public_base_url: str = ""
    trusted_proxies: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    realm: str = "opendatakit.org ODK Sync Endpoint"
    identity_backend: str = "file"
    directory_file: Path | None = None
    group_prefix: str = "default_prefix"
    base_dn: str = "dc=example,dc=org"
    credential_cache_seconds: int = 60
    anonymous_sync: bool = False
    anonymous_attachment_access: bool = False
    row_access: str = "server"
    fetch_limit_default: int = 2000
    fetch_limit_max: int = 10000
    lock_timeout_seconds: float = 30.0
    max_request_bytes: int = 100 * 1024 * 1024
    max_json_bytes: int = 32 * 1024 * 1024
    blob_store: str = "database"
    blob_dir: Path | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    admin_user: str = "admin"
    admin_password: Secret = field(default_factory=lambda: Secret(""))
    # LDAP (OpenLDAP) and, for the connection and the lookup account, Active Directory
    ldap_url: str = "ldap://ldap-service:389"
    ldap_bind_dn: str = "cn=readonly,dc=example,dc=org"
    ldap_bind_password: Secret = field(default_factory=lambda: Secret(""))
    ldap_user_base: str = "ou=people"
    ldap_group_base: str = ""
    ldap_user_attribute: str = "uid"
    ldap_fullname_attribute: str = "givenName"
    ldap_group_name_attribute: str = "cn"
    ldap_member_filter: str = "(memberUid={login})"
    ldap_start_tls: bool = False
    ldap_ca_file: Path | None = None
    ldap_timeout_seconds: float = 5.0
    ldap_pool_size: int = 4
    # Active Directory
    ad_domain: str = ""
    ad_url: str = ""
    ad_base_dn: str = ""
    # DHIS2
    dhis2_api_url: str = ""
    dhis2_admin_user: str = ""
    dhis2_admin_password: Secret = field(default_factory=lambda: Secret(""))
    dhis2_site_admins: str = "ODK_SITE_ADMIN"
    dhis2_administer_tables: str = "ODK_ADMIN_TABLES"
    dhis2_super_user_tables: str = "ODK_SUPER_USER_TABLES"
    dhis2_synchronize_tables: str = "ODK_SYNC_TABLES"
    dhis2_form_managers: str = "ODK_FORM_MNGR"
    dhis2_data_viewers: str = "ODK_DATA_VIEWERS"
    dhis2_data_collectors: str = "ODK_DATA_COLLECTORS"
    dhis2_timeout_seconds: float = 10.0
    # failed-login throttling
    auth_failures_before_delay: int = 5
    auth_failures_before_block: int = 20
    auth_block_seconds: int = 300

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: the configured one, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url.get()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sync.sqlite3').resolve()}"

    @property
    def effective_directory_file(self) -> Path:
        return self.directory_file or self.data_dir / "directory.ldif"

    @property
    def effective_blob_dir(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def effective_ldap_group_base(self) -> str:
        """Group container relative to the base DN: the setting, or `ou=<prefix>,ou=groups`."""
        return self.ldap_group_base or f"ou={self.group_prefix},ou=groups"

    @property
    def effective_ad_domain(self) -> str:
        return self.ad_domain.strip().strip(".").lower()

    @property
    def effective_ad_url(self) -> str:
        """The domain controller: the setting, or `ldaps://<domain>`."""
        return self.ad_url or f"ldaps://{self.effective_ad_domain}"

    @property
    def effective_ad_base_dn(self) -> str:
        """Root of the user and group searches: the setting, or `DC=…` from the domain."""
        if self.ad_base_dn:
            return self.ad_base_dn
        return ",".join(f"DC={label}" for label in self.effective_ad_domain.split(".") if label)


# -- parsing -------------------------------------------------------------------------------


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"{key}: expected true or false, got {raw!r}")


def _int(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{key}: expected a whole number, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
            raise ConfigError(f"{key}: must be {bounds}, got {value}")
        return value

    return parse


def _float_positive(key: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}: expected a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {raw!r}")
    return value


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ConfigError(f"{key}: must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _str(key: str, raw: str) -> str:
    return raw.strip()


def _path(key: str, raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _secret(key: str, raw: str) -> Secret:
    return Secret(raw.strip())


def _app_ids(key: str, raw: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not ids:
        raise ConfigError(f"{key}: at least one app id is required")
    for app_id in ids:
        if "/" in app_id or len(app_id) > 100:
            raise ConfigError(f"{key}: invalid app id {app_id!r}")
    return ids


def _networks(key: str, raw: str) -> tuple[Network, ...]:
    nets = []
    for part in raw.split(","):
        if part.strip():
            try:
                nets.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"{key}: not an IP address or network: {part.strip()!r}"
                ) from None
    return tuple(nets)


def _http_url(key: str, raw: str, expected: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment; '' when unset."""
    value = raw.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{key}: must not contain a user name or password")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{key}: {expected}")
    return value


def _base_url(key: str, raw: str) -> str:
    return _http_url(key, raw, f"expected an absolute http(s) URL without query, got {raw!r}")


def _ldap_url(key: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("ldap", "ldaps"):
        raise ConfigError(f"{key}: expected an ldap:// or ldaps:// URL, got {raw!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{key}: must not contain a user name or password")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{key}: invalid port in {raw!r}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{key}: expected ldap[s]://HOST[:PORT] without a path, got {raw!r}")
    return value


def _dhis2_url(key: str, raw: str) -> str:
    return _http_url(key, raw, "expected an http(s) URL such as https://dhis2.example.org/api")


def _member_filter(key: str, raw: str) -> str:
    value = raw.strip()
    if not (value.startswith("(") and value.endswith(")")):
        raise ConfigError(f"{key}: an LDAP filter in parentheses is expected, got {raw!r}")
    if "{login}" not in value and "{dn}" not in value:
        raise ConfigError(f"{key}: must contain {{login}} (login name) or {{dn}} (user DN)")
    if value.count("(") != value.count(")"):
        raise ConfigError(f"{key}: unbalanced parentheses in {raw!r}")
    return value


def _attribute(key: str, raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", value):
        raise ConfigError(f"{key}: expected an LDAP attribute name, got {raw!r}")
    return value


def _log_level(key: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{key}: must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return value


def _database_url(key: str, raw: str) -> Secret:
    value = raw.strip()
    if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
        raise ConfigError(
            f"{key}: expected a URL starting with sqlite+aiosqlite:// or postgresql+psycopg://"
        )
    return Secret(value)


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "data_dir": lambda key, raw: Path(raw.strip() or "data"),
    "database_url": _database_url,
    "host": _str,
    "port": _int(0, 65535),
    "app_ids": _app_ids,
    "public_base_url": _base_url,
    "trusted_proxies": _networks,
    "realm": _str,
    "identity_backend": _choice("file", "ldap", "activedirectory", "dhis2"),
    "directory_file": _path,
    "group_prefix": _str,
    "base_dn": _str,
    "credential_cache_seconds": _int(0, 3600),
    "anonymous_sync": _bool,
    "anonymous_attachment_access": _bool,
    "row_access": _choice("server", "device"),
    "fetch_limit_default": _int(1),
    "fetch_limit_max": _int(1),
    "lock_timeout_seconds": _float_positive,
    "max_request_bytes": _int(1024),
    "max_json_bytes": _int(1024),
    "blob_store": _choice("database", "filesystem"),
    "blob_dir": _path,
    "log_level": _log_level,
    "log_format": _choice("text", "json"),
    "admin_user": _str,
    "admin_password": _secret,
    "ldap_url": _ldap_url,
    "ldap_bind_dn": _str,
    "ldap_bind_password": _secret,
    "ldap_user_base": _str,
    "ldap_group_base": _str,
    "ldap_user_attribute": _attribute,
    "ldap_fullname_attribute": _attribute,
    "ldap_group_name_attribute": _attribute,
    "ldap_member_filter": _member_filter,
    "ldap_start_tls": _bool,
    "ldap_ca_file": _path,
    "ldap_timeout_seconds": _float_positive,
    "ldap_pool_size": _int(1, 64),
    "ad_domain": _str,
    "ad_url": _ldap_url,
    "ad_base_dn": _str,
    "dhis2_api_url": _dhis2_url,
    "dhis2_admin_user": _str,
    "dhis2_admin_password": _secret,
    "dhis2_site_admins": _str,
    "dhis2_administer_tables": _str,
    "dhis2_super_user_tables": _str,
    "dhis2_synchronize_tables": _str,
    "dhis2_form_managers": _str,
    "dhis2_data_viewers": _str,
    "dhis2_data_collectors": _str,
    "dhis2_timeout_seconds": _float_positive,
    "auth_failures_before_delay": _int(0, 1_000_000),
    "auth_failures_before_block": _int(0, 1_000_000),
    "auth_block_seconds": _int(1, 86_400),
}

SECRET_FIELDS = frozenset(
    {"database_url", "admin_password", "ldap_bind_password", "dhis2_admin_password"}
)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `KEY=VALUE` file (comments, blank lines, optional quotes, optional `export`)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].strip()
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    """Build Settings from env (default: os.environ) and an optional env file.

    `SYNC_ENV_FILE` in the environment names the env file when `env_file` is not given.
    """
    env = dict(os.environ if environ is None else environ)
    if env_file is None and env.get("SYNC_ENV_FILE"):
        env_file = Path(env["SYNC_ENV_FILE"])
    merged: dict[str, str] = {}
    if env_file is not None:
        merged.update(read_env_file(env_file))
    merged.update({k: v for k, v in env.items() if k.startswith(PREFIX)})
    merged.pop("SYNC_ENV_FILE", None)
    for key in [k for k in merged if k.startswith(TEST_PREFIX)]:
        del merged[key]  # reserved for the test suite (SYNC_TEST_DATABASE_URL, …)

    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, raw in merged.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name.endswith("_file") and name[: -len("_file")] in SECRET_FIELDS:
            base = name[: -len("_file")]
            if f"{PREFIX}{base.upper()}" in merged:
                raise ConfigError(f"set either {PREFIX}{base.upper()} or {key}, not both")
            try:
                raw = Path(raw).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read {raw}: {exc.strerror}") from None
            name, key = base, f"{PREFIX}{base.upper()}"
        if name not in known:
            raise ConfigError(f"unknown setting {key} (see config/sync.env.example)")
        values[name] = _PARSERS[name](key, raw)
    settings = Settings(**values)
    if settings.fetch_limit_default > settings.fetch_limit_max:
        raise ConfigError("SYNC_FETCH_LIMIT_DEFAULT must not exceed SYNC_FETCH_LIMIT_MAX")
    check_identity(settings)
    return settings


def check_identity(settings: Settings) -> None:
    """Cross-key checks of the selected identity backend (the others' keys are not used)."""
    backend = settings.identity_backend
    if backend in ("ldap", "activedirectory"):
        url = settings.ldap_url if backend == "ldap" else settings.effective_ad_url
        if settings.ldap_start_tls and url.lower().startswith("ldaps:"):
            raise ConfigError(
                f"SYNC_LDAP_START_TLS=true needs an ldap:// URL, but the directory URL is {url} "
                "(ldaps:// is TLS already)"
            )
        if settings.ldap_ca_file is not None and not settings.ldap_ca_file.is_file():
            raise ConfigError(f"SYNC_LDAP_CA_FILE: {settings.ldap_ca_file} is not a readable file")
        if not settings.ldap_bind_dn:
            raise ConfigError(
                f"SYNC_LDAP_BIND_DN is required with SYNC_IDENTITY_BACKEND={backend} "
                "(the read-only account that looks up groups and users)"
            )
        if not settings.ldap_bind_password:
            raise ConfigError(
                f"SYNC_LDAP_BIND_PASSWORD (or SYNC_LDAP_BIND_PASSWORD_FILE) is required with "
                f"SYNC_IDENTITY_BACKEND={backend}: the password of {settings.ldap_bind_dn}"
            )
    if backend == "ldap":
        if not settings.ldap_url:
            raise ConfigError("SYNC_LDAP_URL is required with SYNC_IDENTITY_BACKEND=ldap")
        if not settings.base_dn:
            raise ConfigError("SYNC_BASE_DN is required with SYNC_IDENTITY_BACKEND=ldap")
        if not settings.group_prefix and not settings.ldap_group_base:
            raise ConfigError(
                "SYNC_LDAP_GROUP_BASE is required when SYNC_GROUP_PREFIX is empty "
                "(the default group base is ou=<prefix>,ou=groups)"
            )
    elif backend == "activedirectory":
        domain = settings.effective_ad_domain
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
            raise ConfigError(
                "SYNC_AD_DOMAIN is required with SYNC_IDENTITY_BACKEND=activedirectory: the DNS "
                f"domain of the user principal names, e.g. corp.example.org (got {domain!r})"
            )
    elif backend == "dhis2":
        if not settings.dhis2_api_url:
            raise ConfigError(
                "SYNC_DHIS2_API_URL is required with SYNC_IDENTITY_BACKEND=dhis2 "
                "(e.g. https://dhis2.example.org/api)"
            )
        if not settings.dhis2_admin_user or not settings.dhis2_admin_password:
            raise ConfigError(
                "SYNC_DHIS2_ADMIN_USER and SYNC_DHIS2_ADMIN_PASSWORD (or its _FILE) are required "
                "with SYNC_IDENTITY_BACKEND=dhis2: the account that lists users for usersInfo"
            )


def describe(settings: Settings) -> list[tuple[str, str]]:
    """Effective settings as (KEY, printable value) pairs, secrets masked."""
    rows: list[tuple[str, str]] = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, Secret):
            shown = "********" if value else "(not set)"
        elif isinstance(value, tuple):
            shown = ",".join(str(v) for v in value)
        elif value is None:
            shown = "(default)"
        else:
            shown = str(value)
        rows.append((PREFIX + f.name.upper(), shown))
    rows.append(("(database)", _mask_url(settings.effective_database_url)))
    rows.append(("(directory file)", str(settings.effective_directory_file)))
    return rows


def _mask_url(url: str) -> str:
    """Hide a password in the user info and in a `password=` query parameter."""
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":********@", 1)
    if parts.query:
        masked = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2********", parts.query)
        url = url.replace("?" + parts.query, "?" + masked, 1)
    return url
