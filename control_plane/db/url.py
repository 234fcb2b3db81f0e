"""Database URLs: which backend one names, the SQLite file's URL, and a URL fit for a log. Pure."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from control_plane.errors import InvalidArgument

SQLITE, POSTGRESQL = "sqlite", "postgresql"
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*")


def sqlite_url(path: Path) -> str:
    """The URL of an SQLite file: `sqlite:///absolute/path` (the path after `sqlite://`)."""
    return f"sqlite://{path.resolve()}"


def kind_of(url: str) -> str:
    """`sqlite` or `postgresql`; InvalidArgument (field database_url) for any other scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == SQLITE and url[len("sqlite://") :]:
        return SQLITE
    if scheme in {"postgresql", "postgres"}:
        return POSTGRESQL
    raise InvalidArgument("must be sqlite:///absolute/path or postgresql://...", field="database_url")


def describe(url: str) -> str:
    """The URL without its password (in the user part or the query), for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None and not _QUERY_PASSWORD.search(parts.query):
        return url
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return parts._replace(query=_QUERY_PASSWORD.sub(r"\1***", parts.query)).geturl()
