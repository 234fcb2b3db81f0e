"""`sandgate cp`: copy a file into or out of a session's sandbox (`SESSION:PATH` names the sandbox side)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from control_plane.cli.context import CliContext
from control_plane.cli.output import emit
from control_plane.errors import InvalidArgument

_REMOTE = re.compile(r"^(s-[0-9a-f]{16}):(/.*)$")


def remote(spec: str) -> tuple[str, str] | None:
    """`s-...:/tmp/x` to (session id, path); None for a local path (or `-`, stdin or stdout)."""
    found = _REMOTE.match(spec)
    return (found.group(1), found.group(2)) if found else None


def copy(ctx: CliContext, a: argparse.Namespace) -> int:
    source, target = remote(a.source), remote(a.target)
    if (source is None) == (target is None):
        raise InvalidArgument("exactly one side must be SESSION:PATH, e.g. s-0123456789abcdef:/tmp/x", field="cp")
    with ctx.sessions() as c:
        if target is not None:
            data = sys.stdin.buffer.read() if a.source == "-" else _read(a.source)
            size = c.write_file(target[0], target[1], data)
        else:
            assert source is not None
            data = c.read_file(source[0], source[1])
            size = len(data)
            _write(a.target, data)
    if ctx.as_json:
        emit({"source": a.source, "target": a.target, "bytes": size}, True)
    elif a.target != "-":
        print(f"copied {size} bytes: {a.source} -> {a.target}")
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}", field="SOURCE") from None


def _write(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InvalidArgument(f"cannot write {path}: {exc.strerror}", field="TARGET") from None
