"""A test host outside the sandbox, in a network namespace the tests create (in 10.213.0.0/16)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

# A /30 of its own per test process, so that several stacks (CI, a benchmark, a helper's trial) can run side
# by side without two veths claiming one address.
_NET = 4 * (os.getpid() % 16000)
OUTSIDE_ADDR = f"10.213.{_NET // 256}.{_NET % 256 + 2}"
_HOST_ADDR = f"10.213.{_NET // 256}.{_NET % 256 + 1}"


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


class OutsideHost:
    """A namespace with one veth to the host and a TCP listener on OUTSIDE_ADDR:8080."""

    def __init__(self) -> None:
        self.ns = f"sg-out-{os.getpid()}"
        self.veth = f"sgo{os.getpid() % 100000}"
        self._server: subprocess.Popen[bytes] | None = None
        self.address = OUTSIDE_ADDR

    def __enter__(self) -> OutsideHost:
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        _ip("addr", "add", f"{_HOST_ADDR}/30", "dev", self.veth)
        _ip("link", "set", self.veth, "up")
        _ip("-n", self.ns, "addr", "add", f"{OUTSIDE_ADDR}/30", "dev", "eth0")
        _ip("-n", self.ns, "link", "set", "eth0", "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")
        script = Path(__file__).with_name("tcp_banner.py")
        self._server = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3", str(script), OUTSIDE_ADDR, "8080"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((OUTSIDE_ADDR, 8080), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the outside test host did not start")

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.kill()
            self._server.wait()
        _ip("link", "del", self.veth, check=False)
        _ip("netns", "del", self.ns, check=False)
