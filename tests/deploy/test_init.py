"""scripts/init: the files it writes, their modes, re-runs, refusals and the interactive mode.

Every run writes into a temp output dir (`--output-dir`), never into the repository. The
generated server configuration is then handed to the real `sync-endpoint check-config`, with
the secrets passed as files the way the stack passes them (DEPLOYMENT.md §4, §11 items 23-26).
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import (
    ADMIN_PASSWORD,
    DOMAIN,
    EMAIL,
    REPO,
    admin_password_file,
    clean_env,
    files_below,
    init_args,
    read_env,
    run_init,
)

SECRETS = ["db_password", "ldap_admin_password", "ldap_readonly_password", "sync_database_url"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    return admin_password_file(tmp_path / "input")


def check_config(out: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`sync-endpoint check-config` on the generated sync.env, secrets as the stack gives them."""
    env = clean_env(
        SYNC_DATABASE_URL_FILE=str(out / "secrets" / "sync_database_url"),
        SYNC_LDAP_BIND_PASSWORD_FILE=str(out / "secrets" / "ldap_readonly_password"),
        SYNC_DATA_DIR=str(data_dir),
    )
    return subprocess.run(
        [sys.executable, "-m", "sync_endpoint", "--env-file", str(out / "config" / "sync.env"),
         "check-config"],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO, check=False,
    )  # fmt: skip


# -- happy paths -----------------------------------------------------------------------------


def test_https_init_writes_every_file(tmp_path: Path, password_file: Path) -> None:
    """`--https` writes the four env files, four secrets and both nginx configs for the domain."""
    out = tmp_path / "out"
    result = run_init(*init_args(out, password_file))
    assert result.returncode == 0, result.stderr
    assert files_below(out) == [
        "config",
        "config/db.env",
        "config/https.env",
        "config/ldap.env",
        "config/sync.env",
        "nginx",
        "nginx/rendered",
        "nginx/rendered/sync-endpoint-https.conf",
        "nginx/rendered/sync-endpoint.conf",
        "secrets",
        *(f"secrets/{name}" for name in SECRETS),
    ]
    sync_env = read_env(out / "config" / "sync.env")
    assert sync_env["SYNC_PUBLIC_BASE_URL"] == f"https://{DOMAIN}"
    assert sync_env["SYNC_IDENTITY_BACKEND"] == "ldap"
    assert sync_env["SYNC_MAX_REQUEST_BYTES"] == "104857600"
    https_env = read_env(out / "config" / "https.env")
    assert (https_env["HTTPS_DOMAIN"], https_env["HTTPS_ADMIN_EMAIL"]) == (DOMAIN, EMAIL)
    assert https_env["HTTPS_STAGING"] == "false"
    for name in ("ldap", "db"):
        example = (REPO / "config" / f"{name}.env.example").read_text(encoding="utf-8")
        assert (out / "config" / f"{name}.env").read_text(encoding="utf-8") == example
    secrets = {name: (out / "secrets" / name).read_text(encoding="utf-8") for name in SECRETS}
    assert secrets["ldap_admin_password"] == ADMIN_PASSWORD
    assert len(secrets["ldap_readonly_password"]) >= 16
    assert len(secrets["db_password"]) >= 16
    assert (
        secrets["sync_database_url"]
        == f"postgresql+psycopg://odk:{secrets['db_password']}@db:5432/odk"
    )
    https_conf = (out / "nginx/rendered/sync-endpoint-https.conf").read_text(encoding="utf-8")
    assert f"server_name {DOMAIN};" in https_conf
    assert f"ssl_certificate /etc/letsencrypt/live/{DOMAIN}/fullchain.pem;" in https_conf
    assert "client_max_body_size 100m;" in https_conf
    assert "server sync:8080;" in https_conf
    assert "${" not in https_conf
    # The printed first-issuance command names the domain and the e-mail address.
    assert f"-d {DOMAIN} -m {EMAIL}" in result.stdout
    for value in secrets.values():
        assert value not in result.stdout + result.stderr, "init printed a secret"


def test_http_init_for_an_ip_address(tmp_path: Path, password_file: Path) -> None:
    """`--no-https` accepts an IP address, renders only the HTTP config and warns about it."""
    out = tmp_path / "out"
    result = run_init(*init_args(out, password_file, https=False))
    assert result.returncode == 0, result.stderr
    assert read_env(out / "config" / "sync.env")["SYNC_PUBLIC_BASE_URL"] == "http://192.0.2.10"
    assert files_below(out / "nginx" / "rendered") == ["sync-endpoint.conf"]
    conf = (out / "nginx/rendered/sync-endpoint.conf").read_text(encoding="utf-8")
    assert "server_name 192.0.2.10;" in conf
    assert "clear text" in result.stdout


def test_file_modes(tmp_path: Path, password_file: Path) -> None:
    """secrets/ is 0700 and every secret 0600; configs stay readable (0644)."""
    out = tmp_path / "out"
    assert run_init(*init_args(out, password_file)).returncode == 0
    assert mode(out / "secrets") == 0o700
    for name in SECRETS:
        assert mode(out / "secrets" / name) == 0o600, name
    for path in [*(out / "config").iterdir(), *(out / "nginx" / "rendered").iterdir()]:
        assert mode(path) == 0o644, path


def test_rerun_keeps_secrets_and_operator_lines(tmp_path: Path, password_file: Path) -> None:
    """A second run keeps every secret byte for byte and any setting added to sync.env by hand."""
    out = tmp_path / "out"
    assert run_init(*init_args(out, password_file)).returncode == 0
    before = {name: (out / "secrets" / name).read_bytes() for name in SECRETS}
    sync_env = out / "config" / "sync.env"
    sync_env.write_text(sync_env.read_text() + "SYNC_FETCH_LIMIT_DEFAULT=500\n")
    (out / "secrets" / "db_password").chmod(0o644)  # a careless copy; init restores 0600

    again = run_init(*init_args(out, password_file), "--max-request-bytes", str(50 * 1024 * 1024))
    assert again.returncode == 0, again.stderr
    assert {name: (out / "secrets" / name).read_bytes() for name in SECRETS} == before
    assert mode(out / "secrets" / "db_password") == 0o600
    values = read_env(sync_env)
    assert values["SYNC_FETCH_LIMIT_DEFAULT"] == "500"
    # The body limit moves in step in the server's settings and in both nginx configs.
    assert values["SYNC_MAX_REQUEST_BYTES"] == str(50 * 1024 * 1024)
    for conf in (out / "nginx" / "rendered").iterdir():
        assert "client_max_body_size 50m;" in conf.read_text(encoding="utf-8"), conf


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_check_config_accepts_generated_config(
    tmp_path: Path, password_file: Path, https: bool
) -> None:
    """The server's own `check-config` accepts what init generated, secrets given as files."""
    out = tmp_path / "out"
    assert run_init(*init_args(out, password_file, https=https)).returncode == 0
    result = check_config(out, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    shown = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    base = f"https://{DOMAIN}" if https else "http://192.0.2.10"
    assert shown["SYNC_PUBLIC_BASE_URL"] == base
    assert shown["SYNC_IDENTITY_BACKEND"] == "ldap"
    assert shown["SYNC_LDAP_BIND_PASSWORD"] == "********"
    assert shown["SYNC_TRUSTED_PROXIES"] == "10.213.0.0/24"
    assert shown["(database)"] == "postgresql+psycopg://odk:********@db:5432/odk"
    readonly = (out / "secrets" / "ldap_readonly_password").read_text()
    assert readonly not in result.stdout


# -- refusals --------------------------------------------------------------------------------


BAD = {
    "invalid-domain": (["--domain", "bad_name!.org"], "is not a valid domain name"),
    "url-not-domain": (["--domain", f"https://{DOMAIN}/"], "give only the host name"),
    "https-without-email": (["--domain", DOMAIN, "--https"], "--email is required"),
    "https-for-ip": (["--domain", "192.0.2.10", "--https", "--email", EMAIL], "public domain"),
    "reserved-email": (["--domain", DOMAIN, "--email", "me@example.com"], "refuses addresses"),
    "tiny-max-body": (
        ["--domain", DOMAIN, "--email", EMAIL, "--max-request-bytes", "100"],
        "--max-request-bytes must be at least 1024",
    ),
}


@pytest.mark.parametrize(("args", "message"), BAD.values(), ids=BAD.keys())
def test_bad_value_exits_2_and_writes_nothing(
    tmp_path: Path, password_file: Path, args: list[str], message: str
) -> None:
    """An invalid value stops init with status 2 and a message, before anything is written."""
    out = tmp_path / "out"
    result = run_init(
        "--non-interactive", *args, "--admin-password-file", str(password_file),
        "--generate-secrets", "--output-dir", str(out),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert files_below(out) == []


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 8 characters"), ("has space1", "spaces and control characters")],
    ids=["short", "blank"],
)
def test_bad_admin_password_exits_2(tmp_path: Path, password: str, message: str) -> None:
    """A short (or blank-containing) LDAP admin password is refused; nothing is written."""
    out = tmp_path / "out"
    result = run_init(*init_args(out, admin_password_file(tmp_path / "input", password)))
    assert result.returncode == 2
    assert message in result.stderr
    assert files_below(out) == []


def test_missing_password_source_exits_2(tmp_path: Path) -> None:
    """Without --admin-password-file or --generate-secrets there is no admin password: status 2."""
    out = tmp_path / "out"
    result = run_init(
        "--non-interactive", "--domain", DOMAIN, "--email", EMAIL, "--output-dir", str(out)
    )
    assert result.returncode == 2
    assert "no LDAP admin password" in result.stderr
    assert files_below(out) == []


def test_bad_value_leaves_existing_tree_untouched(tmp_path: Path, password_file: Path) -> None:
    """A refused re-run changes no byte of an existing deployment tree."""
    out = tmp_path / "out"
    assert run_init(*init_args(out, password_file)).returncode == 0
    before = snapshot(out)
    result = run_init(
        "--non-interactive", "--domain", "-bad-.org", "--email", EMAIL,
        "--generate-secrets", "--output-dir", str(out),
    )  # fmt: skip
    assert result.returncode == 2
    assert snapshot(out) == before


# -- interactive -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ([], None, "no answer on standard input"),
        # domain (default), e-mail (default), staging (no), "generate?" no: then the password
        # prompt meets the end of input.
        (["--domain", DOMAIN, "--https", "--email", EMAIL], "\n\n\nn\n", "no password on"),
    ],
    ids=["closed-stdin", "eof-at-password"],
)
def test_interactive_without_input_exits(
    tmp_path: Path, args: list[str], stdin: str | None, message: str
) -> None:
    """Interactive mode with closed (or exhausted) stdin exits 2 at once instead of hanging."""
    out = tmp_path / "out"
    result = run_init(*args, "--output-dir", str(out), stdin=stdin, timeout=20)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert files_below(out) == []


def test_interactive_https_answers(tmp_path: Path) -> None:
    """Typed answers (domain, defaults, e-mail) produce the same files as the automation flags."""
    out = tmp_path / "out"
    # domain, HTTPS [Y], e-mail, staging [N], generate admin [Y], generate read-only [Y], write [Y]
    answers = f"{DOMAIN}\n\n{EMAIL}\n\n\n\n\n"
    result = run_init("--output-dir", str(out), stdin=answers, timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    https_env = read_env(out / "config" / "https.env")
    assert (https_env["HTTPS_DOMAIN"], https_env["HTTPS_ADMIN_EMAIL"]) == (DOMAIN, EMAIL)
    assert read_env(out / "config" / "sync.env")["SYNC_PUBLIC_BASE_URL"] == f"https://{DOMAIN}"
    assert (out / "nginx/rendered/sync-endpoint-https.conf").is_file()
    admin = (out / "secrets" / "ldap_admin_password").read_text()
    assert len(admin) >= 16
    assert admin not in result.stdout


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (f"{DOMAIN}\n\n{EMAIL}\n\n\n\nn\n", "Nothing written"),
        # An IP address: no HTTPS possible, and running without it defaults to "no".
        ("192.0.2.10\n\n", "choose HTTPS"),
    ],
    ids=["declined-write", "declined-insecure"],
)
def test_interactive_decline_exits_1(tmp_path: Path, answers: str, message: str) -> None:
    """Declining to write, or to run without HTTPS, exits 1 and writes nothing."""
    out = tmp_path / "out"
    result = run_init("--output-dir", str(out), stdin=answers, timeout=20)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert files_below(out) == []
