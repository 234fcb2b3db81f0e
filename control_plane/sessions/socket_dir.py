"""A session's host directory, mounted read-only at /run/sandgate: Envoy's socket, the token, the forwarder.

Who may reach what (measured with runsc; docs/SECURITY.md): the gofer, which opens the sandbox's
host files and connects its unix socket, runs as root with CAP_DAC_OVERRIDE; the Sentry runs as host
uid 65534 (nobody) in a user namespace of its own and touches no host path; inside the sandbox,
uid 65534 needs to traverse the directory, run the forwarder, connect the socket and read the token.
So every host path above a session's directory is root's and 0700: no other host user, nobody
included, reaches a token or a socket. The session directory is 0711 (the sandbox's user may enter it,
not list it) and its token is 0400, owned by the sandbox's uid: inside, only that user reads it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from control_plane.sessions.runtime import SANDBOX_UID

TOKEN_NAME = "token"


def prepare_root(sessions_dir: Path) -> None:
    """The directory of all sessions' directories: root's, 0700 (an existing one is tightened)."""
    sessions_dir.mkdir(exist_ok=True, mode=0o700)
    sessions_dir.chmod(0o700)


def prepare(path: Path, forwarder: Path) -> Path:
    """Make a session's directory (0711) holding the forwarder; FileExistsError if it exists already."""
    path.mkdir(parents=True, mode=0o711)
    path.chmod(0o711)  # whatever the umask
    # A hard link: the sandbox sees the forwarder without a second host mount.
    try:
        (path / "sandgate-forward").hardlink_to(forwarder)
    except OSError:
        shutil.copy2(forwarder, path / "sandgate-forward")
    return path


def write_token(path: Path, token: str) -> None:
    """Atomically (a session may be claimed from the warm pool while its sandbox runs)."""
    tmp = path / ".token"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    with os.fdopen(fd, "w") as f:
        os.fchown(fd, SANDBOX_UID, SANDBOX_UID)
        f.write(token)
    tmp.replace(path / TOKEN_NAME)


def remove(path: Path) -> None:
    """Remove a session's directory and everything in it; a missing one is not an error."""
    shutil.rmtree(path, ignore_errors=True)
