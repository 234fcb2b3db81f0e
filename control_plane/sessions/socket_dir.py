"""A session's host directory, mounted read-only at /run/sandgate: Envoy's socket, the token, the forwarder."""

from __future__ import annotations

import shutil
from pathlib import Path

SOCKET_NAME = "proxy.sock"


def prepare(path: Path, forwarder: Path) -> Path:
    path.mkdir(parents=True, mode=0o755)
    # A hard link: the sandbox sees the forwarder without a second host mount.
    try:
        (path / "sandgate-forward").hardlink_to(forwarder)
    except OSError:
        shutil.copy2(forwarder, path / "sandgate-forward")
    return path


def write_token(path: Path, token: str) -> None:
    tmp = path / ".token"
    tmp.write_text(token)
    tmp.chmod(0o444)
    tmp.replace(path / "token")


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
