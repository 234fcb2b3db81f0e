"""Secrets kept in the state directory, readable by root only (0600): API tokens, keys, Envoy's bootstrap."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def load_or_create_token(configured: str, path: Path) -> str:
    """The configured token, else the one stored at `path`, else a new one written there. Never logs the token."""
    if configured:
        return configured
    if path.exists():
        path.chmod(0o600)  # one written by an older version, or by hand
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.warning("generated a new token; it is in %s", path)
    return token


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, mode 0600 from the first byte on; readers see the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)
