#!/usr/bin/env python3
"""Render an nginx template by replacing `${NAME}` placeholders with given values.

Usage:
    render.py TEMPLATE OUT --set KEY=VALUE [--set KEY=VALUE ...]

Only braced upper-case placeholders such as `${SERVER_NAME}` are template
placeholders. nginx's own variables (`$host`, `$remote_addr`, ...) are written
without braces in our templates and are never touched. Every placeholder found
in the template must get a value; otherwise nothing is written and the exit
status is 2. Values given for keys the template does not use are ignored, so
one set of values can render both the HTTP and the HTTPS template.

OUT may be `-` for standard output. Standard library only (python3 >= 3.8).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Characters that would let a value break out of an nginx directive or be read
# as an nginx variable. None of the legitimate values (host names, host:port,
# sizes like 100m, directory paths) needs them.
FORBIDDEN = set(";{}#$\"'`\\\r\n\t\x00")


class RenderError(Exception):
    """A template or a value that cannot be rendered safely."""


def placeholders(text: str) -> list[str]:
    """Names of all `${NAME}` placeholders in `text`, in order of first use."""
    seen: list[str] = []
    for match in PLACEHOLDER.finditer(text):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def check_value(key: str, value: str) -> None:
    """Raise RenderError if `value` is unsafe to paste into an nginx directive."""
    if not KEY.match(key):
        raise RenderError(f"invalid key {key!r}: use upper-case letters, digits and _")
    if value == "" or value.strip() != value:
        raise RenderError(f"{key}: value must be non-empty without leading/trailing blanks")
    bad = sorted(set(value) & FORBIDDEN)
    if bad:
        raise RenderError(f"{key}: value {value!r} contains forbidden character(s) {bad!r}")


def render(text: str, values: Mapping[str, str]) -> str:
    """Return `text` with every `${NAME}` replaced by `values[NAME]`.

    Raises:
        RenderError: a placeholder has no value, or a value is unsafe.
    """
    missing = [name for name in placeholders(text) if name not in values]
    if missing:
        raise RenderError("no value for placeholder(s): " + ", ".join(missing))
    for key, value in values.items():
        check_value(key, value)
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise RenderError(f"--set {item!r}: expected KEY=VALUE")
        if key in values:
            raise RenderError(f"--set {key} given twice")
        values[key] = value
    return values


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Substitute ${KEY} placeholders in an nginx template."
    )
    parser.add_argument("template", type=Path, help="template file (*.conf.template)")
    parser.add_argument("out", help="output file, or - for standard output")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value for placeholder ${KEY}; repeat for each placeholder",
    )
    args = parser.parse_args(argv)
    try:
        text = args.template.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"render.py: cannot read {args.template}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        result = render(text, parse_sets(args.sets))
    except RenderError as exc:
        print(f"render.py: {args.template}: {exc}", file=sys.stderr)
        return 2
    if args.out == "-":
        sys.stdout.write(result)
    else:
        write_atomic(Path(args.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
