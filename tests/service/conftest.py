"""Service-tier fixtures: the real admin, gRPC and xDS servers with a real managed Envoy, as a subprocess over
the in-memory runtime (no dockerd)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dns import DnsServer
from tests.support.postgres import database_url, postgres
from tests.support.service import NoSandboxProcess, SandgateClient

__all__ = ["client", "database_url", "postgres", "sandgate"]


@pytest.fixture(scope="session")
def sandgate() -> Iterator[NoSandboxProcess]:
    """One control plane for the tier. Its state directory has a short path: a session's socket path must fit
    in 107 bytes."""
    state = Path(tempfile.mkdtemp(prefix="sg-svc-"))
    with DnsServer({"allowed.test": "127.0.0.1", "other.test": "127.0.0.1"}) as dns:
        proc = NoSandboxProcess(state / "state", dns.port)
        try:
            yield proc.start()
        finally:
            proc.stop()
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture()
def client(sandgate: NoSandboxProcess) -> Iterator[SandgateClient]:
    c = SandgateClient(sandgate)
    yield c
    c.cleanup()


@pytest.fixture()
def short_state() -> Iterator[Path]:
    """A state directory with a short path: a session's socket path must fit in 107 bytes, and pytest's own
    tmp_path (`/tmp/pytest-of-root/pytest-NNNN/<test name>/`) may not leave room for it."""
    root = Path(tempfile.mkdtemp(prefix="sg-"))
    try:
        yield root / "state"
    finally:
        shutil.rmtree(root, ignore_errors=True)
