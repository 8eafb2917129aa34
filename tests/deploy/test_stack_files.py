"""The swarm stack files, merged by `docker stack config` on a tree prepared by scripts/init.

`docker stack config` needs only the Docker CLI, no engine (TEST_SERVICES.md §6): it validates
the schema, merges `-c` files and interpolates variables, but neither reads secret/config files
nor checks cross-references. The tests parse its output and check those themselves, plus what
an operator relies on (DEPLOYMENT.md §1, §11 items 1-5, 13-22; docs/deploy.md). The server
settings each service ends up with are also handed to the real `sync-endpoint check-config`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DOMAIN, REPO, clean_env, prepare_tree, read_env

BASE = ["compose/docker-compose.yml"]
HTTPS = [*BASE, "compose/docker-compose-https.yml"]
SERVICES = {"nginx", "sync", "migrate", "db", "ldap-service", "phpldapadmin"}
SECRETS_DIR = "/run/secrets/"


def docker_or_skip() -> str:
    docker = shutil.which("docker")
    if docker is not None:
        return docker
    # Skipped (with this reason) wherever the client is absent, CI included: the suite does not
    # install Docker; machines that have the CLI run the check.
    pytest.skip("the docker CLI is not on PATH; `docker stack config` needs only the CLI")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HTTPS deployment tree (both nginx configs rendered), as docs/deploy.md §4 leaves it."""
    docker_or_skip()
    return prepare_tree(tmp_path_factory.mktemp("stack") / "deploy")


def stack_config(tree: Path, files: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`set -a; . config/sync.env; set +a; docker stack config -c …` in the tree."""
    exported = {**read_env(tree / "config" / "sync.env"), **env}
    args = [docker_or_skip(), "stack", "config"]
    for name in files:
        args += ["-c", name]
    return subprocess.run(
        args, cwd=tree, env=clean_env(**exported), capture_output=True, text=True, timeout=60
    )


def merged(tree: Path, files: list[str], **env: str) -> dict[str, Any]:
    result = stack_config(tree, files, **env)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def base(tree: Path) -> dict[str, Any]:
    return merged(tree, BASE)


@pytest.fixture(scope="module")
def https(tree: Path) -> dict[str, Any]:
    return merged(tree, HTTPS)


@pytest.fixture(params=["base", "https"])
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each variant of the merged stack in turn."""
    document: dict[str, Any] = request.getfixturevalue(request.param)
    return document


def sources(service: dict[str, Any], kind: str) -> list[str]:
    """Names of the secrets or configs a service mounts (short or long syntax)."""
    return [e if isinstance(e, str) else e["source"] for e in service.get(kind) or []]


def secret_targets(service: dict[str, Any]) -> dict[str, str]:
    """Path inside the container -> secret name, for each secret the service mounts."""
    result = {}
    for entry in service.get("secrets") or []:
        name = entry if isinstance(entry, str) else entry["source"]
        target = name if isinstance(entry, str) else entry.get("target", name)
        result[target if target.startswith("/") else SECRETS_DIR + target] = name
    return result


def volume_target(service: dict[str, Any], volume: str) -> tuple[str, bool]:
    """Mount point and read-only flag of a named volume in a service."""
    for entry in service.get("volumes") or []:
        if entry.get("source") == volume:
            return str(entry["target"]), bool(entry.get("read_only", False))
    raise AssertionError(f"volume {volume} is not mounted")


def declared_file(document: dict[str, Any], kind: str, name: str) -> Path:
    declaration = (document.get(kind) or {}).get(name)
    assert declaration is not None, f"{kind} {name} is used but not declared"
    return Path(declaration["file"])


# -- validity --------------------------------------------------------------------------------


@pytest.mark.parametrize("files", [BASE, HTTPS], ids=["base", "https"])
def test_stack_config_accepts_the_files(tree: Path, files: list[str]) -> None:
    """`docker stack config` accepts the base file alone and with the HTTPS overlay."""
    document = merged(tree, files)
    expected = SERVICES | ({"certbot"} if len(files) == 2 else set())
    assert set(document["services"]) == expected


def test_public_base_url_must_be_exported(tree: Path) -> None:
    """Without the variables of config/sync.env exported the stack refuses to render."""
    args = [docker_or_skip(), "stack", "config", "-c", BASE[0]]
    result = subprocess.run(
        args, cwd=tree, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SYNC_PUBLIC_BASE_URL" in result.stderr


# -- ports, replicas, networks ---------------------------------------------------------------


def test_only_nginx_and_phpldapadmin_publish_ports(stack: dict[str, Any]) -> None:
    """nginx publishes 80 (and 443 with HTTPS); phpLDAPadmin its admin port; nothing else."""
    services = stack["services"]
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"nginx", "phpldapadmin"}
    nginx_ports = {(p["target"], int(p["published"])) for p in services["nginx"]["ports"]}
    expected = {(80, 80), (443, 443)} if "certbot" in services else {(80, 80)}
    assert nginx_ports == expected
    # Host mode keeps the client address for X-Forwarded-For (no routing mesh).
    for name in publishing:
        assert all(p["mode"] == "host" for p in services[name]["ports"]), name


def test_phpldapadmin_is_stopped_and_isolated_by_default(stack: dict[str, Any]) -> None:
    """phpLDAPadmin runs 0 replicas (nothing listens), off port 80/443 and off sync-network."""
    service = stack["services"]["phpldapadmin"]
    assert service["deploy"]["replicas"] == 0
    published = {int(p["published"]) for p in service["ports"]}
    assert published == {40000}
    assert set(service["networks"]) == {"ldap-admin-network"}
    assert "ldap-admin-network" in stack["services"]["ldap-service"]["networks"]


def test_phpldapadmin_can_be_started_on_another_port(tree: Path) -> None:
    """PHPLDAPADMIN_REPLICAS/PHPLDAPADMIN_PORT start it, on that node port only."""
    document = merged(tree, BASE, PHPLDAPADMIN_REPLICAS="1", PHPLDAPADMIN_PORT="40123")
    service = document["services"]["phpldapadmin"]
    assert service["deploy"]["replicas"] == 1
    assert [(p["target"], int(p["published"])) for p in service["ports"]] == [(80, 40123)]


def test_sync_replicas_default_above_one_and_configurable(tree: Path, base: dict[str, Any]) -> None:
    """The server runs 2 replicas by default, rolled one at a time; SYNC_REPLICAS changes it."""
    deploy = base["services"]["sync"]["deploy"]
    assert deploy["replicas"] > 1
    assert deploy["update_config"]["parallelism"] == 1
    assert deploy["update_config"]["order"] == "start-first"
    scaled = merged(tree, BASE, SYNC_REPLICAS="5")
    assert scaled["services"]["sync"]["deploy"]["replicas"] == 5


def test_networks_are_encrypted_overlays(stack: dict[str, Any]) -> None:
    """Every network is an encrypted overlay; the trusted-proxy setting is sync-network's subnet."""
    for name, network in stack["networks"].items():
        assert network["driver"] == "overlay", name
        assert network["driver_opts"]["encrypted"] == "true", name
    subnets = [c["subnet"] for c in stack["networks"]["sync-network"]["ipam"]["config"]]
    env = stack["services"]["sync"]["environment"]
    assert env["SYNC_TRUSTED_PROXIES"] == subnets[0]
    for name in ("nginx", "sync", "migrate", "db", "ldap-service"):
        assert "sync-network" in stack["services"][name]["networks"], name


# -- the server and its one-shot migration ---------------------------------------------------


def test_server_environment(tree: Path, base: dict[str, Any]) -> None:
    """The server gets its database URL and LDAP password as secrets and the public URL."""
    service = base["services"]["sync"]
    env = service["environment"]
    assert env["SYNC_DATABASE_URL_FILE"] == "/run/secrets/sync_database_url"
    assert env["SYNC_IDENTITY_BACKEND"] == "ldap"
    assert env["SYNC_LDAP_URL"] == "ldap://ldap-service:389"
    assert env["SYNC_LDAP_BIND_DN"] == "cn=readonly,dc=example,dc=org"
    assert env["SYNC_LDAP_BIND_PASSWORD_FILE"] == "/run/secrets/ldap_readonly_password"
    assert env["SYNC_PUBLIC_BASE_URL"] == f"https://{DOMAIN}"
    assert "SYNC_DATABASE_URL" not in env
    assert "SYNC_LDAP_BIND_PASSWORD" not in env
    assert service["command"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert (
        env["SYNC_MAX_REQUEST_BYTES"]
        == read_env(tree / "config/sync.env")["SYNC_MAX_REQUEST_BYTES"]
    )


def test_migrate_is_a_one_shot_retried_on_failure(base: dict[str, Any]) -> None:
    """`migrate` runs the server image's migrate command once, retried only when it fails."""
    services = base["services"]
    migrate = services["migrate"]
    assert migrate["image"] == services["sync"]["image"]
    assert migrate["command"] == ["migrate"]
    policy = migrate["deploy"]["restart_policy"]
    assert policy["condition"] == "on-failure"
    assert policy["max_attempts"] >= 1
    assert migrate["deploy"]["replicas"] == 1
    assert "ports" not in migrate


@pytest.mark.parametrize("name", ["sync", "migrate"])
def test_server_settings_pass_check_config(
    tree: Path, base: dict[str, Any], tmp_path: Path, name: str
) -> None:
    """Each server service's environment, its secrets mapped to the files, passes check-config."""
    # Every `sync-endpoint` command validates all settings first, so a service missing a secret
    # its settings need (say the LDAP password under SYNC_IDENTITY_BACKEND=ldap) never starts.
    service = base["services"][name]
    mounted = secret_targets(service)
    env = {}
    for key, value in service["environment"].items():
        value = str(value)
        if value in mounted:  # /run/secrets/X, as the swarm provides it
            value = str(declared_file(base, "secrets", mounted[value]))
        env[key] = value
    env["SYNC_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "sync_endpoint", "check-config"],
        env=clean_env(**env), cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}: {result.stderr}"


def test_postgres_gets_its_password_as_a_secret(tree: Path, base: dict[str, Any]) -> None:
    """db reads POSTGRES_PASSWORD_FILE; user, database and password agree with the server's URL."""
    db = base["services"]["db"]
    env = db["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert secret_targets(db)["/run/secrets/db_password"] == "db_password"
    assert "POSTGRES_PASSWORD" not in env
    url = declared_file(base, "secrets", "sync_database_url").read_text()
    password = declared_file(base, "secrets", "db_password").read_text()
    user, database = env["POSTGRES_USER"], env["POSTGRES_DB"]
    assert url == f"postgresql+psycopg://{user}:{password}@db:5432/{database}"
    assert "db-data" in {v["source"] for v in db["volumes"]}


def test_ldap_service_matches_the_server(base: dict[str, Any]) -> None:
    """The directory's domain, read-only account and seed LDIF fit the server's LDAP settings."""
    ldap = base["services"]["ldap-service"]
    env = ldap["environment"]
    mounted = secret_targets(ldap)
    for key in ("LDAP_ADMIN_PASSWORD_FILE", "LDAP_READONLY_USER_PASSWORD_FILE"):
        assert env[key] in mounted, key
    assert mounted[env["LDAP_READONLY_USER_PASSWORD_FILE"]] == "ldap_readonly_password"
    base_dn = ",".join(f"dc={part}" for part in env["LDAP_DOMAIN"].split("."))
    assert env["LDAP_READONLY_USER"] == "true"
    sync_env = base["services"]["sync"]["environment"]
    assert sync_env["SYNC_LDAP_BIND_DN"] == f"cn={env['LDAP_READONLY_USER_USERNAME']},{base_dn}"
    seed = next(c for c in ldap["configs"] if c["source"] == "ldap_bootstrap_ldif")
    assert seed["target"].startswith(env["LDAP_SEED_INTERNAL_LDIF_PATH"] + "/")
    ldif = declared_file(base, "configs", "ldap_bootstrap_ldif").read_text()
    assert f"dn: ou=default_prefix,ou=groups,{base_dn}" in ldif
    assert env["PHPLDAPADMIN_LDAP_HOSTS"] == "ldap-service"


# -- every service ---------------------------------------------------------------------------


def test_every_service_has_restart_policy_and_healthcheck(stack: dict[str, Any]) -> None:
    """Each service restarts by policy and has a health check (only migrate may disable it)."""
    for name, service in stack["services"].items():
        assert service["deploy"]["restart_policy"]["condition"] in ("any", "on-failure"), name
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):
            assert name == "migrate", f"{name} disables its healthcheck"
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert check["timeout"], name
            assert check["interval"], name


def test_secrets_and_configs_are_declared_and_exist(stack: dict[str, Any]) -> None:
    """Every secret/config a service uses is declared, and init wrote the file behind it."""
    used: set[tuple[str, str]] = set()
    for name, service in stack["services"].items():
        for kind in ("secrets", "configs"):
            for source in sources(service, kind):
                path = declared_file(stack, kind, source)
                assert path.is_file(), f"{name}: {kind} {source} -> {path} is missing"
                used.add((kind, source))
        # A *_FILE variable naming a secret path must name a secret this service mounts.
        mounted = secret_targets(service)
        for key, value in (service.get("environment") or {}).items():
            if str(value).startswith(SECRETS_DIR):
                assert value in mounted, f"{name}: {key}={value} is not mounted"
    for kind in ("secrets", "configs"):
        for source in stack.get(kind) or {}:
            assert (kind, source) in used, f"{kind} {source} is declared but unused"
    for path in (declared_file(stack, "secrets", s) for s in stack["secrets"]):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


# -- nginx and the HTTPS overlay -------------------------------------------------------------


def nginx_config(stack: dict[str, Any]) -> str:
    service = stack["services"]["nginx"]
    entry = next(c for c in service["configs"] if c["source"] == "nginx_conf")
    assert entry["target"] == "/etc/nginx/conf.d/default.conf"
    return declared_file(stack, "configs", "nginx_conf").read_text(encoding="utf-8")


def test_nginx_config_matches_the_stack(stack: dict[str, Any]) -> None:
    """The rendered nginx config proxies to the sync service and shares limit and webroot."""
    services = stack["services"]
    conf = nginx_config(stack)
    command = services["sync"]["command"]
    port = command[command.index("--port") + 1]
    assert f"server sync:{port};" in conf
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size is not None
    max_bytes = int(services["sync"]["environment"]["SYNC_MAX_REQUEST_BYTES"])
    assert int(size.group(1)) * 1024 * 1024 == max_bytes
    webroot, read_only = volume_target(services["nginx"], "certbot-www")
    assert read_only
    assert f"root {webroot};" in conf
    https = "certbot" in services
    assert ("listen 443 ssl" in conf) == https
    name = stack["configs"]["nginx_conf"]["name"]
    assert name == ("odkx-nginx-https-1" if https else "odkx-nginx-http-1")


def test_https_overlay_adds_tls_renewal_and_shared_webroot(
    tree: Path, https: dict[str, Any]
) -> None:
    """HTTPS: nginx reads the letsencrypt volume and reloads; certbot renews into the same dirs."""
    services = https["services"]
    nginx, certbot = services["nginx"], services["certbot"]
    conf = nginx_config(https)
    live, read_only = volume_target(nginx, "letsencrypt")
    assert read_only
    assert f"ssl_certificate {live}/live/{DOMAIN}/fullchain.pem;" in conf
    assert f"ssl_certificate_key {live}/live/{DOMAIN}/privkey.pem;" in conf
    assert "nginx -s reload" in " ".join(nginx["command"])
    # certbot renews over HTTP-01 into the webroot nginx serves, and into the same live dir.
    script = " ".join(certbot["command"])
    assert "certbot renew" in script
    certbot_webroot, certbot_ro = volume_target(certbot, "certbot-www")
    assert not certbot_ro
    assert certbot_webroot == volume_target(nginx, "certbot-www")[0]
    assert f"--webroot -w {certbot_webroot}" in script
    assert volume_target(certbot, "letsencrypt") == (live, False)
    assert (
        certbot["environment"]["HTTPS_DOMAIN"]
        == read_env(tree / "config/https.env")["HTTPS_DOMAIN"]
    )
    assert "ports" not in certbot
    assert {"letsencrypt", "certbot-www"} <= set(https["volumes"])
