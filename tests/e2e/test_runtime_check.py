"""At start the service asks dockerd for its runtime and checks that runtime's runsc release."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker

from tests.e2e.conftest import OwnSandgate
from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess


def test_a_runtime_dockerd_does_not_have_is_refused_with_the_reason(short_tmp: Path, dns: DnsServer) -> None:
    proc = SandgateProcess(short_tmp / "state", dns.port, container_runtime="runsc-not-registered")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
    out = subprocess.run([sys.executable, "-m", "control_plane", "serve", "--config", str(proc.config)],
                         env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        "dockerd has no runtime 'runsc-not-registered': register it in daemon.json (scripts/setup.sh does) "
        "and reload dockerd"
    )
    assert not (short_tmp / "state" / "envoy" / "bootstrap.yaml").exists()  # nothing else started


def test_the_runtimes_runsc_release_is_logged_at_start(
    own_sandgate_with: OwnSandgate, docker_client: docker.DockerClient
) -> None:
    log = own_sandgate_with().log()
    binary = docker_client.info()["Runtimes"]["runsc-sandgate"]["path"]
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    release = version.split()[2].removeprefix("release-").removeprefix("0.0~")
    assert f"runsc {release}" in log or f"release {release}" in log
