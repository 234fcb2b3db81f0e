"""docs/SDK.md, run as written: every `python` block against the running service; the one marked to run
on a terminal gets a pseudo-terminal of its own, and keys typed into it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

REPO = Path(__file__).resolve().parents[2]
ON_A_TERMINAL = "<!-- sdk-doc: run on a terminal -->"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)```", re.S)


def doc_blocks(on_a_terminal: bool = False) -> list[str]:
    text = (REPO / "docs" / "SDK.md").read_text()
    return [m["code"] for m in BLOCK.finditer(text) if (m["before"].strip() == ON_A_TERMINAL) == on_a_terminal]


@pytest.fixture()
def stack_env(sandgate: SandgateProcess) -> dict[str, str]:
    return {
        **os.environ,
        "SANDGATE_GRPC_ADDR": f"127.0.0.1:{sandgate.grpc_port}",
        "SANDGATE_ADMIN_ADDR": f"127.0.0.1:{sandgate.admin_port}",
        "SANDGATE_API_TOKEN": sandgate.api_token,
        "SANDGATE_ADMIN_TOKEN": sandgate.admin_token,
    }


@pytest.fixture(scope="module")
def example_com() -> Iterator[Upstream]:
    """example.com, through the tests' DNS server, is this loopback upstream on port 80. Another test
    (the README walkthrough) may hold port 80 for a moment: wait for it, boundedly."""
    deadline = time.monotonic() + 120
    while True:
        try:
            upstream = Upstream(port=80)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with upstream:
        yield upstream


def test_the_doc_has_examples() -> None:
    assert len(doc_blocks()) >= 8


@pytest.mark.parametrize("index", range(len(doc_blocks())))
def test_sdk_doc_example_runs(index: int, stack_env: dict[str, str], example_com: Upstream) -> None:
    code = doc_blocks()[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=stack_env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, f"example {index} failed:\n{code}\n--- stderr:\n{result.stderr}"


def test_sdk_doc_terminal_example_runs_on_a_terminal(stack_env: dict[str, str]) -> None:
    [code] = doc_blocks(on_a_terminal=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**stack_env, "COLUMNS": "", "LINES": ""},
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    os.close(slave)
    try:
        screen = _read_until(master, b"$ ")  # the shell's prompt: the sandbox is up
        os.write(master, b"stty size; exit 3\r")
        screen += _read_until(master, b"33 111")
        assert proc.wait(timeout=120) == 3, proc.stderr.read() if proc.stderr else ""
        assert b"33 111" in screen
    finally:
        _stop(proc)
        os.close(master)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """A failed example is interrupted as a person would (^C: its with-blocks end its session), then killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


def _read_until(fd: int, needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], 120)
        assert ready, f"no {needle!r} within 120 s; the screen so far: {seen!r}"
        seen += os.read(fd, 4096)
    return seen
