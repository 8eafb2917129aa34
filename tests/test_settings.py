"""Settings: precedence, env-file parsing, strict values, *_FILE secrets, masking (STYLE §8)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

from sync_endpoint.errors import ConfigError
from sync_endpoint.settings import (
    SECRET_FIELDS,
    Secret,
    Settings,
    describe,
    load_settings,
    read_env_file,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "sync.env.example"


def env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.env"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(environ: dict[str, str], file: Path | None = None) -> str:
    """The message of the ConfigError that loading these settings raises."""
    with pytest.raises(ConfigError) as info:
        load_settings(environ, file)
    return str(info.value)


# -- defaults and precedence -----------------------------------------------------------------


def test_defaults() -> None:
    """Without any SYNC_* key every setting has its documented default."""
    settings = load_settings({})
    assert settings == Settings()
    assert settings.port == 8080
    assert settings.host == "127.0.0.1"
    assert settings.app_ids == ("default",)
    assert settings.row_access == "server"
    assert settings.identity_backend == "file"
    assert settings.credential_cache_seconds == 60
    assert settings.anonymous_sync is False
    assert (settings.fetch_limit_default, settings.fetch_limit_max) == (2000, 10000)
    assert settings.database_url == Secret("")
    assert settings.admin_password == Secret("")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_effective_paths_derive_from_data_dir(tmp_path: Path) -> None:
    """Without explicit values the database, directory and blobs live in the data dir."""
    settings = load_settings({"SYNC_DATA_DIR": str(tmp_path)})
    expected = f"sqlite+aiosqlite:///{(tmp_path / 'sync.sqlite3').resolve()}"
    assert settings.effective_database_url == expected
    assert settings.effective_directory_file == tmp_path / "directory.ldif"
    assert settings.effective_blob_dir == tmp_path / "blobs"


def test_non_sync_keys_are_ignored() -> None:
    """Variables without the SYNC_ prefix are none of our business."""
    assert load_settings({"PATH": "/bin", "SYNCX": "1", "sync_port": "1"}) == Settings()


def test_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, os.environ is read."""
    for key in [k for k in os.environ if k.startswith("SYNC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SYNC_PORT", "9001")
    assert load_settings().port == 9001


def test_env_overrides_env_file(tmp_path: Path) -> None:
    """A key set in the environment wins over the env file; other file keys still apply."""
    path = env_file(tmp_path, "SYNC_PORT=9000\nSYNC_HOST=0.0.0.0\n")
    settings = load_settings({"SYNC_PORT": "9100"}, path)
    assert (settings.port, settings.host) == (9100, "0.0.0.0")


def test_sync_env_file_names_the_file(tmp_path: Path) -> None:
    """SYNC_ENV_FILE in the environment names the env file."""
    path = env_file(tmp_path, "SYNC_PORT=9200\n")
    assert load_settings({"SYNC_ENV_FILE": str(path)}).port == 9200


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    """An env file that cannot be read is a ConfigError naming it."""
    missing = tmp_path / "nope.env"
    assert str(missing) in config_error({}, missing)


# -- env file parsing ------------------------------------------------------------------------


def test_env_file_syntax(tmp_path: Path) -> None:
    """Comments, blank lines, quotes, `export` and spaces around `=` are understood."""
    path = env_file(
        tmp_path,
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "SYNC_HOST = 0.0.0.0 \n"
        "export SYNC_PORT=9300\n"
        "SYNC_REALM=\"My realm\"\n"
        "SYNC_GROUP_PREFIX='my prefix'\n"
        "SYNC_BASE_DN=dc=example,dc=net\n"
        'SYNC_ADMIN_PASSWORD="has # hash"\n'
        "OTHER=ignored\n",
    )  # fmt: skip
    values = read_env_file(path)
    assert values["SYNC_HOST"] == "0.0.0.0"
    assert values["SYNC_REALM"] == "My realm"
    assert values["SYNC_GROUP_PREFIX"] == "my prefix"
    assert values["SYNC_BASE_DN"] == "dc=example,dc=net"
    assert values["OTHER"] == "ignored"
    settings = load_settings({}, path)
    assert (settings.host, settings.port, settings.realm) == ("0.0.0.0", 9300, "My realm")
    assert settings.group_prefix == "my prefix"
    assert settings.base_dn == "dc=example,dc=net"
    assert settings.admin_password.get() == "has # hash"


def test_env_file_unmatched_quote_is_kept(tmp_path: Path) -> None:
    """Only a matching pair of quotes around the whole value is removed."""
    values = read_env_file(env_file(tmp_path, 'A="x\'\nB=\'\nC=""\n'))
    assert values == {"A": "\"x'", "B": "'", "C": ""}


def test_env_file_malformed_line(tmp_path: Path) -> None:
    """A line that is not KEY=VALUE is an error naming the file and line."""
    path = env_file(tmp_path, "SYNC_PORT=1\njust words\n")
    assert f"{path}:2" in config_error({}, path)


# -- unknown keys ----------------------------------------------------------------------------


def test_unknown_key_in_environment() -> None:
    """An unknown SYNC_ key is an error naming it, so a typo never goes unnoticed."""
    assert "SYNC_PROT" in config_error({"SYNC_PROT": "80"})


def test_unknown_key_in_env_file(tmp_path: Path) -> None:
    """Unknown keys in the env file are errors too."""
    assert "SYNC_FOO" in config_error({}, env_file(tmp_path, "SYNC_FOO=1\n"))


def test_file_variant_of_a_non_secret_is_unknown() -> None:
    """Only secrets have a *_FILE variant."""
    assert "SYNC_HOST_FILE" in config_error({"SYNC_HOST_FILE": "/etc/hostname"})


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SYNC_ANONYMOUS_SYNC", "maybe"),
        ("SYNC_ANONYMOUS_SYNC", "2"),
        ("SYNC_PORT", "70000"),
        ("SYNC_PORT", "-1"),
        ("SYNC_PORT", "http"),
        ("SYNC_PORT", "80.5"),
        ("SYNC_CREDENTIAL_CACHE_SECONDS", "-1"),
        ("SYNC_CREDENTIAL_CACHE_SECONDS", "3601"),
        ("SYNC_FETCH_LIMIT_DEFAULT", "0"),
        ("SYNC_FETCH_LIMIT_MAX", "-5"),
        ("SYNC_MAX_REQUEST_BYTES", "10"),
        ("SYNC_MAX_JSON_BYTES", "1k"),
        ("SYNC_LOCK_TIMEOUT_SECONDS", "0"),
        ("SYNC_LOCK_TIMEOUT_SECONDS", "-3"),
        ("SYNC_LOCK_TIMEOUT_SECONDS", "nan"),
        ("SYNC_LOCK_TIMEOUT_SECONDS", "soon"),
        ("SYNC_ROW_ACCESS", "client"),
        ("SYNC_IDENTITY_BACKEND", "kerberos"),
        ("SYNC_BLOB_STORE", "s3"),
        ("SYNC_LOG_FORMAT", "xml"),
        ("SYNC_LOG_LEVEL", "TRACE"),
        ("SYNC_PUBLIC_BASE_URL", "ftp://sync.example.org"),
        ("SYNC_PUBLIC_BASE_URL", "sync.example.org"),
        ("SYNC_PUBLIC_BASE_URL", "https://"),
        ("SYNC_PUBLIC_BASE_URL", "https://sync.example.org/?a=1"),
        ("SYNC_PUBLIC_BASE_URL", "https://sync.example.org/#top"),
        ("SYNC_TRUSTED_PROXIES", "localhost"),
        ("SYNC_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("SYNC_TRUSTED_PROXIES", "10.0.0.1,300.1.1.1"),
        ("SYNC_DATABASE_URL", "postgresql://odk@db/odk"),
        ("SYNC_DATABASE_URL", "sqlite:///sync.sqlite3"),
        ("SYNC_DATABASE_URL", "mysql://odk@db/odk"),
        ("SYNC_APP_IDS", " , "),
        ("SYNC_APP_IDS", "default,a/b"),
        ("SYNC_APP_IDS", "x" * 101),
    ],
)
def test_bad_value_names_the_key(key: str, value: str) -> None:
    """Every kind of invalid value is a ConfigError whose message names the key."""
    assert key in config_error({key: value})


def test_bad_database_url_message_hides_the_password() -> None:
    """The error for a bad database URL does not repeat the URL (it may hold a password)."""
    message = config_error({"SYNC_DATABASE_URL": "mysql://odk:hunter2@db/odk"})
    assert "hunter2" not in message


def test_fetch_limit_default_above_max() -> None:
    """The default page size may not exceed the maximum; the message names both keys."""
    message = config_error({"SYNC_FETCH_LIMIT_DEFAULT": "500", "SYNC_FETCH_LIMIT_MAX": "100"})
    assert "SYNC_FETCH_LIMIT_DEFAULT" in message
    assert "SYNC_FETCH_LIMIT_MAX" in message


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on", " On "])
def test_true_booleans(raw: str) -> None:
    """true, 1, yes and on (any case) are true."""
    assert load_settings({"SYNC_ANONYMOUS_SYNC": raw}).anonymous_sync is True


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "off", ""])
def test_false_booleans(raw: str) -> None:
    """false, 0, no, off and empty are false."""
    assert load_settings({"SYNC_ANONYMOUS_SYNC": raw}).anonymous_sync is False


def test_good_values_are_parsed() -> None:
    """Valid values are cast and normalised."""
    settings = load_settings(
        {
            "SYNC_PORT": " 0 ",
            "SYNC_APP_IDS": "default, survey ,",
            "SYNC_TRUSTED_PROXIES": "10.0.0.1/8, 192.168.1.1,::1",
            "SYNC_PUBLIC_BASE_URL": "https://sync.example.org:8443/base/",
            "SYNC_ROW_ACCESS": "DEVICE",
            "SYNC_LOG_LEVEL": "debug",
            "SYNC_LOCK_TIMEOUT_SECONDS": "2.5",
            "SYNC_CREDENTIAL_CACHE_SECONDS": "0",
            "SYNC_DIRECTORY_FILE": "/srv/dir.ldif",
            "SYNC_BLOB_DIR": "",
            "SYNC_DATABASE_URL": "postgresql+psycopg://odk:pw@db:5432/odk",
        }
    )
    assert settings.port == 0
    assert settings.app_ids == ("default", "survey")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.public_base_url == "https://sync.example.org:8443/base"
    assert settings.row_access == "device"
    assert settings.log_level == "DEBUG"
    assert settings.lock_timeout_seconds == 2.5
    assert settings.credential_cache_seconds == 0
    assert settings.directory_file == Path("/srv/dir.ldif")
    assert settings.blob_dir is None
    assert settings.effective_database_url == "postgresql+psycopg://odk:pw@db:5432/odk"


# -- *_FILE secrets --------------------------------------------------------------------------


def test_database_url_file(tmp_path: Path) -> None:
    """SYNC_DATABASE_URL_FILE reads the URL from a file, trailing newline stripped."""
    secret = tmp_path / "sync_database_url"
    secret.write_text("postgresql+psycopg://odk:s3cret@db:5432/odk\n", encoding="utf-8")
    settings = load_settings({"SYNC_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url.get() == "postgresql+psycopg://odk:s3cret@db:5432/odk"


def test_admin_password_file(tmp_path: Path) -> None:
    """SYNC_ADMIN_PASSWORD_FILE reads the password from a file."""
    secret = tmp_path / "admin_password"
    secret.write_text("correct horse\n", encoding="utf-8")
    settings = load_settings({"SYNC_ADMIN_PASSWORD_FILE": str(secret)})
    assert settings.admin_password.get() == "correct horse"


def test_secret_file_in_env_file(tmp_path: Path) -> None:
    """*_FILE keys work from the env file too."""
    secret = tmp_path / "admin_password"
    secret.write_text("pw", encoding="utf-8")
    path = env_file(tmp_path, f"SYNC_ADMIN_PASSWORD_FILE={secret}\n")
    assert load_settings({}, path).admin_password.get() == "pw"


def test_secret_file_content_is_validated(tmp_path: Path) -> None:
    """A URL read from a file is checked like one given directly."""
    secret = tmp_path / "url"
    secret.write_text("mysql://odk:s3cret@db/odk", encoding="utf-8")
    message = config_error({"SYNC_DATABASE_URL_FILE": str(secret)})
    assert "SYNC_DATABASE_URL" in message
    assert "s3cret" not in message


def test_missing_secret_file(tmp_path: Path) -> None:
    """An unreadable *_FILE is an error naming the key."""
    assert "SYNC_ADMIN_PASSWORD_FILE" in config_error(
        {"SYNC_ADMIN_PASSWORD_FILE": str(tmp_path / "absent")}
    )


@pytest.mark.parametrize("name", ["SYNC_DATABASE_URL", "SYNC_ADMIN_PASSWORD"])
def test_both_value_and_file_is_an_error(tmp_path: Path, name: str) -> None:
    """Setting both X and X_FILE is an error naming both, wherever each comes from."""
    secret = tmp_path / "secret"
    secret.write_text("sqlite+aiosqlite:///x", encoding="utf-8")
    both = {name: "sqlite+aiosqlite:///y", f"{name}_FILE": str(secret)}
    message = config_error(both)
    assert name in message
    assert f"{name}_FILE" in message
    mixed = env_file(tmp_path, f"{name}=sqlite+aiosqlite:///y\n")
    assert f"{name}_FILE" in config_error({f"{name}_FILE": str(secret)}, mixed)


# -- masking ---------------------------------------------------------------------------------


def test_secret_repr_is_masked() -> None:
    """A Secret never shows its value in repr, str or f-strings."""
    secret = Secret("hunter2")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert "hunter2" not in shown
    assert "*" in repr(secret)
    assert secret.get() == "hunter2"
    assert bool(secret)
    assert not Secret("")
    assert secret == Secret("hunter2")
    assert secret != Secret("other")
    assert secret != "hunter2"


def test_settings_repr_is_masked() -> None:
    """The repr of Settings (e.g. in a traceback or log) hides secrets."""
    settings = Settings(
        database_url=Secret("postgresql+psycopg://odk:hunter2@db/odk"),
        admin_password=Secret("hunter3"),
    )
    assert "hunter2" not in repr(settings)
    assert "hunter3" not in repr(settings)


def test_describe_lists_every_setting_masked() -> None:
    """describe() lists every field as SYNC_<FIELD> and masks secrets."""
    settings = load_settings(
        {
            "SYNC_DATABASE_URL": "postgresql+psycopg://odk:hunter2@db:5432/odk",
            "SYNC_ADMIN_PASSWORD": "hunter3",
        }
    )
    rows = dict(describe(settings))
    for f in fields(Settings):
        assert f"SYNC_{f.name.upper()}" in rows
    assert rows["SYNC_DATABASE_URL"] == "********"
    assert rows["SYNC_ADMIN_PASSWORD"] == "********"
    assert rows["(database)"] == "postgresql+psycopg://odk:********@db:5432/odk"
    text = "\n".join(f"{k}={v}" for k, v in describe(settings))
    assert "hunter2" not in text
    assert "hunter3" not in text


def test_describe_unset_secrets_and_sqlite_default(tmp_path: Path) -> None:
    """Unset secrets show as not set; the effective database is the SQLite file."""
    rows = dict(describe(load_settings({"SYNC_DATA_DIR": str(tmp_path)})))
    assert rows["SYNC_ADMIN_PASSWORD"] == "(not set)"
    assert rows["(database)"] == f"sqlite+aiosqlite:///{(tmp_path / 'sync.sqlite3').resolve()}"
    assert rows["(directory file)"] == str(tmp_path / "directory.ldif")


@pytest.mark.parametrize("password", ["p@ss", "a:b", "p%40ss", "hunter2hunter2"])
def test_describe_masks_unusual_url_passwords(password: str) -> None:
    """Passwords containing @, : or percent escapes are masked too."""
    url = f"postgresql+psycopg://odk:{password}@db/odk"
    rows = describe(load_settings({"SYNC_DATABASE_URL": url}))
    assert all(password not in value for _, value in rows)


def test_describe_masks_password_query_parameter() -> None:
    """A database password given as a URL query parameter is not printed either."""
    url = "postgresql+psycopg://odk@db/odk?password=hunter2&sslmode=require"
    rows = describe(load_settings({"SYNC_DATABASE_URL": url}))
    assert all("hunter2" not in value for _, value in rows)


def test_public_base_url_with_credentials_is_never_printed() -> None:
    """A public base URL carrying credentials is refused, or at least never printed."""
    url = "https://user:hunter2@sync.example.org"
    try:
        settings = load_settings({"SYNC_PUBLIC_BASE_URL": url})
    except ConfigError as exc:
        shown = [str(exc)]
    else:
        shown = [value for _, value in describe(settings)]
    assert all("hunter2" not in text for text in shown)


# -- config/sync.env.example -----------------------------------------------------------------

_EXAMPLE_LINE = re.compile(r"^# (SYNC_[A-Z0-9_]+)=(.*)$")


def example_defaults() -> dict[str, str]:
    """The commented `# SYNC_KEY=default` lines of config/sync.env.example."""
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _EXAMPLE_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_example_documents_every_setting() -> None:
    """Every Settings field appears as SYNC_<FIELD> in config/sync.env.example."""
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = example_defaults()
    for f in fields(Settings):
        key = f"SYNC_{f.name.upper()}"
        assert key in text, f"{key} is missing from {EXAMPLE}"
        assert key in documented, f"{key} has no '# {key}=<default>' line in {EXAMPLE}"


def test_example_names_only_real_settings() -> None:
    """Every SYNC_ key the example mentions is a setting (or a secret's *_FILE variant)."""
    known = {f"SYNC_{f.name.upper()}" for f in fields(Settings)}
    known |= {f"SYNC_{name.upper()}_FILE" for name in SECRET_FIELDS} | {"SYNC_ENV_FILE"}
    # Not preceded by a name character: the DHIS2 default ODK_SYNC_TABLES is no key.
    text = EXAMPLE.read_text(encoding="utf-8")
    mentioned = set(re.findall(r"(?<![A-Za-z0-9_])SYNC_[A-Z0-9_]*[A-Z0-9]", text))
    assert mentioned <= known


def test_example_defaults_are_the_real_defaults(tmp_path: Path) -> None:
    """Uncommenting every example line loads exactly the default settings."""
    lines = [f"{key}={value}" for key, value in example_defaults().items()]
    path = env_file(tmp_path, "\n".join(lines) + "\n")
    assert load_settings({}, path) == Settings()
