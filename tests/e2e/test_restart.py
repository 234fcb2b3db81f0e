"""Acknowledged writes survive a kill -9 of the control plane, and are enforced after it restarts."""

from __future__ import annotations

import signal

from tests.e2e.conftest import OwnSandgate
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream


def test_rules_survive_kill_9(own_sandgate: SandgateProcess, http_upstream: Upstream) -> None:
    proc = own_sandgate
    port = http_upstream.port
    with proc.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [port]}])
    rules = f"/v1/sessions/{s.id}/egress?wait=applied"
    assert proc.admin("POST", rules, {"host": "other.test", "ports": [port]})[0] == 201
    assert proc.admin("DELETE", f"/v1/sessions/{s.id}/egress/allowed.test?wait=applied")[0] == 200
    envoy_pid = (proc.state_dir / "envoy.pid").read_text()

    proc.stop(signal.SIGKILL)
    proc.start()

    assert (proc.state_dir / "envoy.pid").read_text() == envoy_pid  # the running Envoy was adopted
    assert proc.admin("GET", f"/v1/sessions/{s.id}/egress")[1]["egress"] == [
        {"host": "other.test", "ports": [port], "methods": [], "paths": [], "inspect": False, "credential": ""}
    ]
    with proc.client() as c:
        got = c.exec(s.id, ["sh", "-c", f"for h in other allowed; do curl -s -o /dev/null -w '%{{http_code}} ' "
                                         f"http://$h.test:{port}/; done"])  # fmt: skip
    assert got.stdout.decode().split() == ["200", "403"]


def test_state_files_are_readable_by_root_only(own_sandgate_with: OwnSandgate) -> None:
    state = own_sandgate_with(admin_token="").state_dir  # unset: generated into the state dir
    envoy = ("envoy/bootstrap.yaml", "envoy/xds.sock", "envoy/admin.sock")
    for name in ("sandgate.db", "decisions.db", "admin-token", *envoy):
        assert (state / name).stat().st_mode & 0o777 == 0o600, name
    assert (state / "envoy").stat().st_mode & 0o777 == 0o700
