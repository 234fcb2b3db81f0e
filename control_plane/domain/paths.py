"""Path globs of egress rules: `/repos/**`, `/simple/*`. Pure: no I/O.

A glob matches a request's whole path, without its query: `*` stands for any characters within one
segment (no `/`), `**` for any characters at all, `/` included. Everything else is literal. Envoy
matches the RE2 that `path_regex` builds after it has normalized the path (`..`, `//`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from control_plane.errors import InvalidArgument

MAX_PATHS = 32
MAX_PATH_LENGTH = 256
# RFC 3986 path characters (pchar and '/'), and '*' for the globs.
_PATH_CHARS = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")


def parse_paths(paths: Iterable[str], field: str = "paths") -> tuple[str, ...]:
    """Sorted, de-duplicated globs, each starting with `/`; InvalidArgument naming `field` otherwise."""
    out = sorted(set(paths))
    if len(out) > MAX_PATHS:
        raise InvalidArgument(f"a rule may list at most {MAX_PATHS} paths, got {len(out)}", field=field)
    for glob in out:
        _check_glob(glob, field)
    return tuple(out)


def _check_glob(glob: str, field: str) -> None:
    if len(glob) > MAX_PATH_LENGTH:
        raise InvalidArgument(f"a path is at most {MAX_PATH_LENGTH} characters", field=field)
    if not _PATH_CHARS.fullmatch(glob):
        raise InvalidArgument(f"{glob!r} is not a path glob: '/', then URL path characters", field=field)
    if "***" in glob:
        raise InvalidArgument(f"{glob!r}: use '*' (one segment) or '**' (any depth)", field=field)
    if "/../" in glob + "/" or "/./" in glob + "/":
        raise InvalidArgument(f"{glob!r} holds a dot segment; requests are matched once normalized", field=field)


def glob_regex(glob: str) -> str:
    """The RE2 (Python-compatible) that matches exactly the paths `glob` names."""
    parts = re.split(r"(\*\*|\*)", glob)
    pieces = {"**": ".*", "*": "[^/]*"}
    return "".join(pieces.get(part, re.escape(part)) for part in parts)


def path_regex(globs: Iterable[str]) -> str:
    """One RE2 alternation for several globs."""
    return "|".join(f"(?:{glob_regex(g)})" for g in globs)


def path_allowed(globs: tuple[str, ...], path: str) -> bool:
    """Whether a normalized path without its query matches one of `globs` (none means every path)."""
    return not globs or re.fullmatch(path_regex(globs), path) is not None
