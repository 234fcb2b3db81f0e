"""Schemathesis against the live admin API: what /openapi.json promises is what the server does.

The real control plane and its managed Envoy run here (no sandboxes: NoSandboxRuntime), and `st run` tests every
operation with every check, positive and negative data, a bounded number of examples and a fixed seed.
The service runs with `allow_broad_wildcards`: the Public Suffix List is the one host rule no JSON Schema can
state (see control_plane/admin/hosts.py), and with small rule limits so that no schema-valid rule set can
expand past `max_route_domains`, the one cross-field limit the schema cannot state either.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.app import App
from control_plane.config import Settings
from control_plane.sessions.manager import CreateRequest
from tests.support.no_sandbox import NoSandboxRuntime

TOKEN = "schema-test-token"
MAX_EXAMPLES = 20
RUN_TIMEOUT_S = 900  # a bound on a stuck run, not an expectation of speed


@pytest.fixture()
async def admin_app(tmp_path: Path) -> AsyncIterator[App]:
    settings = Settings(
        state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
        node_id=f"schema-{tmp_path.name}", api_token="api", admin_token=TOKEN, warm_pool_size=0,
        allow_broad_wildcards=True, max_rules=8, max_ports_per_rule=8, max_cidr_addresses=16,
    )  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    try:
        async with asyncio.timeout(60):  # /readyz is 503 until Envoy has ACKed: wait for it, as a user would
            while not app.cache.in_sync(settings.node_id):  # noqa: ASYNC110  # no event to wait on
                await asyncio.sleep(0.05)
        yield app
    finally:
        await app.stop()


def st_config(session_ids: list[str]) -> str:
    """Egress operations use live sessions most of the time, so that rule writes reach the domain's checks."""
    ids = ", ".join(f'"{sid}"' for sid in session_ids)
    return (
        f'[dictionaries.live]\nvalues = [{ids}]\n\n[[operations]]\ninclude-path-regex = "/egress"\n'
        'parameters = { "path.id" = { dictionary = "live", probability = 0.7 } }\n\n'
        # A 504 is the documented answer to `?wait=applied&timeout=S` when S is shorter than Envoy's ACK takes.
        '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "504"]\n'
    )


async def test_schemathesis_finds_no_failure(admin_app: App, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{admin_app.ports.admin}/openapi.json"
    sessions = [await admin_app.manager.create(CreateRequest(labels={"n": str(i)})) for i in range(3)]
    config = tmp_path / "schemathesis.toml"
    config.write_text(st_config([s.id for s, _ in sessions]))
    st = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(config), "run", url, "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--no-shrink", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "70", "--output-truncate", "false",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    report = out.decode(errors="replace")
    (tmp_path / "report.txt").write_text(report)
    assert proc.returncode == 0, report
    assert "No issues found" in report or "passed" in report, report
