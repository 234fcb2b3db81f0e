"""An external Envoy (as in compose/): the control plane does not run it; Envoy runs the shipped bootstrap."""

from __future__ import annotations

import subprocess
import time

import yaml

from control_plane.envoy_process import EnvoyOptions, default_binary, render_bootstrap
from tests.e2e.conftest import OwnSandgate
from tests.support.service import free_port
from tests.support.upstream import Upstream


def test_sessions_work_through_an_envoy_the_control_plane_does_not_manage(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    proc = own_sandgate_with(manage_envoy=False)
    assert not (proc.state_dir / "envoy.pid").exists()
    admin = free_port()
    options = EnvoyOptions(default_binary(), proc.node_id, admin, proc.xds_port, proc.state_dir)
    bootstrap = proc.state_dir.parent / "external-envoy.yaml"
    bootstrap.write_text(yaml.safe_dump(render_bootstrap(options)))
    envoy = subprocess.Popen([str(default_binary()), "-c", str(bootstrap), "--disable-hot-restart",
                              "--concurrency", "1", "--log-level", "error"])  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while proc.admin("GET", "/readyz", token="")[0] != 200:
            assert time.monotonic() < deadline, "the external Envoy never became ready"
            time.sleep(0.1)
        with proc.client() as c:
            s = c.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
            url = f"http://allowed.test:{http_upstream.port}/"
            got = c.exec(s.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            assert got.stdout == b"200"
            c.delete(s.id)
    finally:
        envoy.terminate()
        envoy.wait(10)
