"""Another user on the host reaches no session's token or socket, and none of the control plane's secrets.

The probe is a throwaway unprivileged system user, created for the test and deleted after it. The
stack's state directory sits in a directory everyone may enter, so only Sandgate's own modes stand
between the probe and the files; the probe first shows that it does reach that directory.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import OwnSandgate
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

PROBE = r"""
import json, os, socket, sys
state, token, sock = sys.argv[1:4]
tried = {"parent": lambda: os.listdir(os.path.dirname(state)), "state": lambda: os.listdir(state),
         "sessions": lambda: os.listdir(os.path.join(state, "sessions")), "token": lambda: open(token).read()}
for name in ("api-token", "admin-token", "sandgate.db", "decisions.db"):
    tried[name] = lambda name=name: open(os.path.join(state, name), "rb").read()
def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.close()
tried["socket"] = connect
result = {}
for name, attempt in tried.items():
    try:
        attempt()
        result[name] = "reached"
    except OSError as exc:
        result[name] = type(exc).__name__
print(json.dumps(result))
"""


@pytest.fixture()
def probe_user() -> Iterator[str]:
    name = f"sgprobe{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=True)


def as_user(user: str, *args: str) -> dict[str, str]:
    out = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", PROBE, *args],
                         capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    return dict(json.loads(out.stdout))


def test_another_host_user_reaches_no_token_socket_or_secret(
    own_sandgate_with: OwnSandgate, short_tmp: Path, probe_user: str, http_upstream: Upstream
) -> None:
    short_tmp.chmod(0o755)  # anyone may enter the directory the state directory is in
    stack = own_sandgate_with()
    port = http_upstream.port
    with stack.client() as client:
        session = client.create(egress=[{"host": "allowed.test", "ports": [port]}])
        own = stack.state_dir / "sessions" / session.id
        seen = as_user(probe_user, str(stack.state_dir), str(own / "token"), str(own / "proxy.sock"))
        assert seen.pop("parent") == "reached"  # the probe works: it is Sandgate's modes that stop it
        assert seen == dict.fromkeys(seen, "PermissionError")
        assert set(seen) == {"state", "sessions", "token", "socket", "api-token", "admin-token", "sandgate.db",
                             "decisions.db"}  # fmt: skip
        # Inside, the sandbox's user still reads its token and reaches its listener.
        curl = f"curl -s -o /dev/null -w '%{{http_code}}' http://allowed.test:{port}/; echo; cat /run/sandgate/token"
        result = client.exec(session.id, ["sh", "-c", curl])
        assert result.stdout.decode().split("\n") == ["200", session.token]


def test_state_and_session_files_have_the_tightest_modes(own_sandgate: SandgateProcess) -> None:
    state = own_sandgate.state_dir
    with own_sandgate.client() as client:
        own = state / "sessions" / client.create().id
        expected = {state: (0o700, 0), state / "sessions": (0o700, 0), own: (0o711, 0), own / "token": (0o400, 65534),
                    state / "sandgate.db": (0o600, 0), state / "decisions.db": (0o600, 0)}  # fmt: skip
        assert {path: (path.stat().st_mode & 0o777, path.stat().st_uid) for path in expected} == expected
