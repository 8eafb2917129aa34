"""The `sync-endpoint` command: serve, migrate, check-config and users."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import string
import sys
from pathlib import Path

from aiohttp import web

from sync_endpoint.errors import ConfigError
from sync_endpoint.log import setup_logging
from sync_endpoint.settings import Settings, describe, load_settings

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sync-endpoint", description=__doc__)
    parser.add_argument(
        "--env-file", type=Path, help="read SYNC_* settings from this file (env vars win)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="address to listen on (default: SYNC_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: SYNC_PORT)")

    sub.add_parser("migrate", help="create or upgrade the database schema (safe to repeat)")
    sub.add_parser("check-config", help="validate and print the effective settings")
    gc = sub.add_parser(
        "gc-blobs", help="remove file bodies no file or attachment refers to (crash leftovers)"
    )
    gc.add_argument(
        "--older-than",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="only blobs written at least this long ago (default 3600: never an upload in flight)",
    )

    users = sub.add_parser("users", help="manage the embedded file directory")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create or replace a user")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--group",
        action="append",
        default=[],
        help="group name, e.g. synchronize_tables (repeatable; the first is the default group)",
    )
    users_sub.add_parser("list", help="list users with their groups")
    remove = users_sub.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    users_sub.add_parser(
        "ensure-admin",
        help="create SYNC_ADMIN_USER in site_admins if the directory has no users yet; "
        "prints a generated password unless SYNC_ADMIN_PASSWORD is set",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "check-config":
        return _check_config(settings)
    if args.command == "gc-blobs":
        return asyncio.run(_gc_blobs(settings, args.older_than))
    return _users(settings, args)


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    from sync_endpoint.app import create_app
    from sync_endpoint.storage.migrate import is_current

    if not asyncio.run(is_current(settings.effective_database_url)):
        print(
            "the database schema is missing or out of date: run `sync-endpoint migrate` first",
            file=sys.stderr,
        )
        return 2
    web.run_app(
        create_app(settings),
        host=host or settings.host,
        port=port if port is not None else settings.port,
        access_log=None,
        print=lambda message: logger.info(message.strip()),
        keepalive_timeout=75,
    )
    return 0


def _migrate(settings: Settings) -> int:
    from sync_endpoint.storage.migrate import run_upgrade

    run_upgrade(settings.effective_database_url)
    print("database schema is up to date")
    return 0


async def _gc_blobs(settings: Settings, older_than: float) -> int:
    from sync_endpoint.storage import open_file_store, open_storage

    storage = open_storage(settings)
    try:
        removed = await open_file_store(settings, storage).sweep_blobs(older_than)
    finally:
        await storage.close()
    print(f"removed {removed} unreferenced blob(s) from the {settings.blob_store} store")
    return 0


def _generated_password(length: int = 16) -> str:
    """Letters and digits only: easy to type on a phone, never mistaken for a CLI option."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _check_config(settings: Settings) -> int:
    for key, value in describe(settings):
        print(f"{key}={value}")
    return 0


def _users(settings: Settings, args: argparse.Namespace) -> int:
    from sync_endpoint.identity import directory_file

    source = directory_file(settings)
    command = args.users_command
    if command == "list":
        directory = source.load()
        for user in sorted(directory.users.values(), key=lambda u: u.uid):
            groups = ", ".join(directory.group_names_of(user.uid)) or "(no group)"
            print(f"{user.uid}\t{groups}")
        return 0
    if command == "remove":
        with source.editing() as directory:
            removed = directory.remove_user(args.name)
        if not removed:
            print(f"no such user: {args.name}", file=sys.stderr)
            return 1
        print(f"removed {args.name}")
        return 0
    if command == "ensure-admin":
        with source.editing() as directory:
            if directory.users:
                return 0
            password = settings.admin_password.get()
            generated = not password
            password = password or _generated_password()
            directory.add_user(settings.admin_user, password, ["site_admins"])
        shown = password if generated else "(from SYNC_ADMIN_PASSWORD)"
        print(f"created administrator {settings.admin_user!r} with password: {shown}")
        return 0
    # add
    if not args.password_stdin:
        print("give the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("empty password", file=sys.stderr)
        return 2
    if not args.group:
        print("give at least one --group (a user in no group cannot sign in)", file=sys.stderr)
        return 2
    if not args.name or any(c in args.name for c in ',=+<>#;\\"') or ":" in args.name:
        print(f"invalid user name {args.name!r}", file=sys.stderr)
        return 2
    with source.editing() as directory:
        directory.add_user(args.name, password, args.group)
    print(f"saved {args.name} ({', '.join(args.group)}) in {source.path}")
    return 0
