"""A private PostgreSQL server for the store's tests, from Debian's `postgresql` package (scripts/setup.sh).

Its own cluster (initdb) in the test's tmp dir, as the `postgres` user when run as root, on 127.0.0.1 and
a free port, no unix socket, password (SCRAM) authentication. Started with the postmaster as our own
child process and stopped by that PID: a system-wide cluster is never touched.
"""

from __future__ import annotations

import glob
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.service import free_port

USER = "sandgate"
START_TIMEOUT_S = 60.0  # initdb and the first start are slow on a busy machine


def pg_bin(name: str) -> Path:
    """A PostgreSQL server program of the newest installed major version."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is missing: run scripts/setup.sh (it installs postgresql)")
    return Path(found[-1])


class PostgresCluster:
    def __init__(self, root: Path, top: Path) -> None:
        """`root`: a new directory for the cluster under `top`, the tmp dir that this test run owns."""
        self.root = root
        self._top = top
        self.data = root / "data"
        self.port = 0
        self._password = secrets.token_urlsafe(16)
        self._proc: subprocess.Popen[bytes] | None = None
        self._databases = itertools.count()
        self._owner: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to Debian's postgres user
            self._owner = {"user": "postgres", "group": "postgres", "extra_groups": []}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self._password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        self._init()
        self.port = free_port()
        log = (self.root / "postgres.log").open("ab")
        self._proc = subprocess.Popen(
            [str(pg_bin("postgres")), "-D", str(self.data), "-c", "listen_addresses=127.0.0.1",
             "-c", f"port={self.port}", "-c", "unix_socket_directories="],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self._owner,
        )  # fmt: skip
        self._wait_ready()
        return self

    def _init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _traversable(self.root, self._top)
        pwfile = self.root / "password"
        pwfile.write_text(self._password)
        if self._owner:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        done = subprocess.run(
            [str(pg_bin("initdb")), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
            capture_output=True, cwd=self.root, **self._owner,
        )  # fmt: skip
        assert done.returncode == 0, f"initdb failed: {done.stderr.decode(errors='replace')}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self._proc is not None and self._proc.poll() is None, self.log()
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"PostgreSQL did not accept connections:\n{self.log()}") from None
                time.sleep(0.1)

    def new_database(self) -> str:
        """A new, empty database of its own; returns its URL."""
        name = f"t{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown of our own postmaster, by its PID."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _traversable(path: Path, top: Path) -> None:
    """Let the postgres user pass every directory from `top` down to `path` (pytest makes its tmp dirs 0700)."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode & 0o777
        directory.chmod(mode | 0o011)
        if directory == top:
            return


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """One private PostgreSQL server for the whole test run, started on first use."""
    base = tmp_path_factory.getbasetemp()
    top = base.parent if base.parent.name.startswith("pytest-of-") else base
    cluster = PostgresCluster(tmp_path_factory.mktemp("postgres"), top)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's tests run once on each backend: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'sandgate.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()
