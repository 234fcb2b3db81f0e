"""An external Envoy (as in compose/): the control plane does not run it; Envoy runs the bootstrap the control
plane wrote for it, on the same host over the root-only unix socket, or from elsewhere over mutual TLS."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from control_plane.envoy_process import default_binary
from tests.e2e.conftest import OwnSandgate
from tests.support.service import free_port
from tests.support.upstream import Upstream


@pytest.mark.parametrize("channel", ["unix", "mtls"])
def test_sessions_work_through_an_envoy_the_control_plane_does_not_manage(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream, channel: str
) -> None:
    extra = {"xds_addr": f"127.0.0.1:{free_port()}"} if channel == "mtls" else {}
    proc = own_sandgate_with(manage_envoy=False, **extra)
    assert not (proc.state_dir / "envoy.pid").exists()
    bootstrap = proc.envoy_dir / "bootstrap.yaml"
    cluster = yaml.safe_load(bootstrap.read_text())["static_resources"]["clusters"][0]
    assert ("transport_socket" in cluster) == (channel == "mtls")
    envoy = subprocess.Popen([str(default_binary()), "-c", str(bootstrap), "--disable-hot-restart",
                              "--concurrency", "1", "--log-level", "error"])  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while proc.admin("GET", "/readyz", token="")[0] != 200:
            assert time.monotonic() < deadline, "the external Envoy never became ready"
            time.sleep(0.1)
        assert proc.envoy_admin("/ready").strip() == "LIVE"  # its admin: the root-only socket the bootstrap names
        with proc.client() as c:
            s = c.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
            url = f"http://allowed.test:{http_upstream.port}/"
            got = c.exec(s.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            assert got.stdout == b"200"
            c.delete(s.id)
    finally:
        envoy.terminate()
        envoy.wait(10)
