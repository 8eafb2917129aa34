"""Throwaway OpenLDAP slapd from Debian's package (TEST_SERVICES.md §2), for directory tests.

The configuration is the one verified there: cn=config loaded offline with `slapadd -n 0`,
back_mdb, the core/cosine/nis/inetorgperson schemas and the suffix `dc=example,dc=org`, whose
root DN `cn=admin,dc=example,dc=org` has the password `adminsecret`. Data can be loaded
offline before start (`slapadd -n 1`) or online afterwards (`ldapadd` as the admin).

With `tls=SlapdTls(...)` slapd also gets a certificate (olcTLS* in cn=config), so StartTLS works
on the `ldap://` listener, and listens for `ldaps://` on a second port (`ldaps_url`). Debian's
slapd is built with GnuTLS: the key must be an unencrypted PEM file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from tests.services.postgres import free_port
from tests.services.process import terminate

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SLAPPASSWD = Path("/usr/sbin/slappasswd")
#: Root over ldapi may manage cn=config (TEST_SERVICES.md §2).
ROOT_PEER = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
DEBUG = ("-d", "0")  # stay in the foreground, log nothing
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")  # nis needs core and cosine first


def slapd_missing() -> str | None:
    """Why slapd cannot run here (a missing binary or schema), or None when it can."""
    needed = [SLAPD, SLAPADD, SLAPPASSWD]
    needed += [Path(f"/etc/ldap/schema/{name}.ldif") for name in SCHEMAS]
    for path in needed:
        if not path.exists():
            return f"{path} is absent (Debian packages slapd and ldap-utils)"
    for tool in ("ldapadd", "ldapsearch"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Debian package ldap-utils)"
    return None


@dataclass(frozen=True)
class SlapdTls:
    """PEM files slapd serves TLS with (olcTLSCACertificateFile, …File, …KeyFile)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class SlapdServer:
    """One slapd on a free loopback port, its configuration and database in a temp dir."""

    base_dn = "dc=example,dc=org"
    admin_dn = "cn=admin,dc=example,dc=org"
    admin_password = "adminsecret"

    def __init__(self, tls: SlapdTls | None = None) -> None:
        self.port = 0
        self.tls = tls
        self.ldaps_port = 0
        self.tmp: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """The `ldaps://` listener; only with a TLS setting."""
        assert self.tls is not None, "SlapdServer(tls=...) serves ldaps://"
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def config_dir(self) -> Path:
        assert self.tmp is not None, "call start() first"
        return self.tmp / "slapd.d"

    def _run(self, *args: str, stdin: str | None = None) -> str:
        """Run a tool; raise with its output so a failing test says what slapd disliked."""
        result = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): {result.stdout}{result.stderr}"
            )
        return result.stdout

    def _config_ldif(self, root_pw_hash: str) -> str:
        assert self.tmp is not None
        t = self.tmp
        includes = "\n".join(f"include: file:///etc/ldap/schema/{s}.ldif" for s in SCHEMAS)
        tls = ""
        if self.tls is not None:
            tls = (
                f"olcTLSCACertificateFile: {self.tls.ca_file}\n"
                f"olcTLSCertificateFile: {self.tls.cert_file}\n"
                f"olcTLSCertificateKeyFile: {self.tls.key_file}\n"
            )
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {t}/slapd.pid
olcArgsFile: {t}/slapd.args
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact={ROOT_PEER} manage by * break

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {t}/db
olcSuffix: {self.base_dn}
olcRootDN: {self.admin_dn}
olcRootPW: {root_pw_hash}
olcDbIndex: objectClass eq
olcDbIndex: uid,memberUid eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""

    def start(self, data: Path | None = None, timeout: float = 15.0) -> None:
        """Configure and start slapd; `data` (LDIF) is loaded offline with slapadd -n 1 first."""
        self.tmp = Path(tempfile.mkdtemp(prefix="sync-slapd-"))
        try:
            (self.tmp / "db").mkdir()
            self.config_dir.mkdir()
            root_pw_hash = self._run(str(SLAPPASSWD), "-s", self.admin_password).strip()
            config = self.tmp / "config.ldif"
            config.write_text(self._config_ldif(root_pw_hash), encoding="utf-8")
            self._run(str(SLAPADD), "-n", "0", "-F", str(self.config_dir), "-l", str(config))
            if data is not None:
                self._run(str(SLAPADD), "-n", "1", "-F", str(self.config_dir), "-l", str(data))
            self.port = free_port()
            if self.tls is not None:
                self.ldaps_port = free_port()
            self._spawn(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, timeout: float) -> None:
        assert self.tmp is not None
        ldapi = "ldapi://" + urllib.parse.quote(str(self.tmp / "ldapi"), safe="")
        listeners = f"{self.url}/ {ldapi}"
        if self.tls is not None:
            listeners += f" {self.ldaps_url}/"
        with open(self.tmp / "slapd.log", "ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                [str(SLAPD), "-h", listeners, "-F", str(self.config_dir), *DEBUG],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections (kernel backlog) but nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def terminate(self) -> None:
        """Stop slapd but keep its configuration and data, for restart()."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a paused slapd cannot handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self, timeout: float = 15.0) -> None:
        """Terminate and start again on the same port with the same data."""
        self.terminate()
        self._spawn(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        assert self.tmp is not None
        deadline = time.monotonic() + timeout
        probe = ["ldapsearch", "-x", "-H", self.url, "-b", "", "-s", "base", "namingContexts"]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return
            time.sleep(0.05)
        log = (self.tmp / "slapd.log").read_text(errors="replace")
        raise RuntimeError(f"slapd did not become ready on {self.url}:\n{log}")

    def ldapadd(self, ldif: Path) -> None:
        """Add the entries of an LDIF file online, bound as the directory administrator."""
        self._run(
            "ldapadd", "-x", "-H", self.url, "-D", self.admin_dn,
            "-w", self.admin_password, "-f", str(ldif),
        )  # fmt: skip

    def stop(self) -> None:
        """SIGTERM (slapd's clean shutdown), then remove the temp dir."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)  # in case a test paused it
            terminate(self.proc, signal.SIGTERM, timeout=10)
            self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> SlapdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def require_slapd_or_skip() -> None:
    """Skip when slapd cannot run here, except under CI where that is a failure."""
    import pytest

    reason = slapd_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true" or os.environ.get("SYNC_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"slapd is required under CI: {reason}")
    pytest.skip(f"slapd unavailable: {reason}")
