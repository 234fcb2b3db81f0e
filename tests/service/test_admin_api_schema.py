"""Schemathesis against the live admin API: what /openapi.json promises is what the server does.

The real control plane and its managed Envoy run here (no sandboxes: NoSandboxRuntime), and `st run` tests every
operation with every check, positive and negative data, a bounded number of examples and a fixed seed.
The service runs with `allow_broad_wildcards`: the Public Suffix List is the one host rule no JSON Schema can
state (see control_plane/admin/hosts.py), and with small rule limits so that no schema-valid rule set can
expand past `max_route_domains`, the one cross-field limit the schema cannot state either.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from control_plane.app import App
from control_plane.config import Settings
from control_plane.sessions.manager import CreateRequest
from tests.support.no_sandbox import NoSandboxRuntime

TOKEN = "schema-test-token"
MAX_EXAMPLES = 20
RUN_TIMEOUT_S = 900  # a bound on a stuck run, not an expectation of speed


@pytest.fixture()
async def admin_app(tmp_path: Path, short_state: Path) -> AsyncIterator[App]:
    settings = Settings(
        state_dir=short_state, grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
        node_id=f"schema-{tmp_path.name}", api_token="api", admin_token=TOKEN, warm_pool_size=0,
        allow_broad_wildcards=True, max_rules=8, max_ports_per_rule=8, max_cidr_addresses=16,
        dns_resolvers=("127.0.0.1:1",),  # an inspected rule's upstream cluster resolves its host: nowhere here
    )  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    try:
        async with asyncio.timeout(60):  # /readyz is 503 until Envoy has ACKed: wait for it, as a user would
            while not app.parts.cache.in_sync(settings.node_id):  # noqa: ASYNC110  # no event to wait on
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
    sessions = [await admin_app.parts.manager.create(CreateRequest(labels={"n": str(i)})) for i in range(3)]
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


async def http(
    app: App, method: str, path: str, token: str | None = TOKEN, body: object = None
) -> tuple[int, Any, Any]:
    """One admin call from the test's own loop: status, headers, decoded JSON (None for no JSON)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, f"http://127.0.0.1:{app.ports.admin}{path}", headers=headers, json=body) as resp,
    ):
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, resp.headers, data


async def test_405_names_the_allowed_methods(admin_app: App) -> None:
    status, headers, body = await http(admin_app, "PATCH", "/v1/policy")
    assert (status, sorted(headers["Allow"].split(","))) == (405, ["GET", "PUT"])
    assert body["error"]["code"] == "method_not_allowed"
    status, headers, _ = await http(admin_app, "POST", "/healthz", token=None)
    assert (status, headers["Allow"]) == (405, "GET")


async def test_open_routes_need_no_token_and_v1_routes_do(admin_app: App) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert (await http(admin_app, "GET", path, token=None))[0] == 200, path
    status, _, body = await http(admin_app, "GET", "/v1/policy", token=None)
    assert (status, body["error"]["code"]) == (401, "unauthenticated")


async def test_policy_write_answers_its_own_schema(admin_app: App) -> None:
    status, _, body = await http(admin_app, "PUT", "/v1/policy?wait=applied", body={"deny": ["evil.test"]})
    assert (status, body) == (200, {"default_egress": [], "deny": ["evil.test"], "applied": True})
    status, _, spec = await http(admin_app, "GET", "/openapi.json", token=None)
    assert set(body) <= set(spec["components"]["schemas"]["Policy"]["properties"])


async def cli(app: App, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """The `sandgate` command against this app, run without blocking the app's loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
    env |= {"SANDGATE_API_TOKEN": "api", "SANDGATE_ADMIN_TOKEN": TOKEN}
    addrs = ["--grpc-addr", f"127.0.0.1:{app.ports.grpc}", "--admin-addr", f"127.0.0.1:{app.ports.admin}"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "control_plane", *args, *addrs, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_against_the_live_api(admin_app: App, tmp_path: Path) -> None:
    session, _ = await admin_app.parts.manager.create(CreateRequest(labels={"cli": "1"}))
    code, out, err = await cli(admin_app, "--json", "session", "ls")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["id"] == session.id and {"expires_at", "created_at", "proxy_url"} <= set(listed)

    code, out, err = await cli(admin_app, "egress", "add", session.id, "10.0.0.0/30", "--wait", "--json")
    assert code == 0, err
    rule = {"host": "10.0.0.0/30", "ports": [80, 443], "methods": [], "paths": [], "inspect": False, "credential": ""}
    assert rule in json.loads(out)["egress"]
    code, out, err = await cli(admin_app, "egress", "rm", session.id, "10.0.0.0/30", "--wait")
    assert code == 0, err
    assert "10.0.0.0/30" not in out and out.splitlines()[-1] == "applied: every Envoy has ACKed the change"

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default_egress": [{"host": "pypi.org", "ports": [443]}], "deny": ["evil.test"]}))
    code, out, err = await cli(admin_app, "policy", "set", str(policy), "--wait")
    assert code == 0, err
    assert out.splitlines() == [
        "default rules of new sessions:", "HOST      PORTS  METHODS", "pypi.org  443    -",
        "denied to every session: evil.test", "applied: every Envoy has ACKed the change",
    ]  # fmt: skip
    code, out, _ = await cli(admin_app, "policy", "get", "--json")
    assert json.loads(out)["deny"] == ["evil.test"]

    code, out, err = await cli(admin_app, "keys", "rotate", "--json", "--wait")
    assert code == 0, err
    rotated = json.loads(out)
    assert rotated["signing_key"] in rotated["verifying_keys"] and len(rotated["verifying_keys"]) == 2

    code, out, err = await cli(admin_app, "decisions", "--session", "a&verdict=x", "--json")
    assert (code, json.loads(out)) == (0, []), err


async def test_envoy_takes_a_deny_list_of_long_names(admin_app: App) -> None:
    """The deny list is one RE2 in every session's routes: Envoy's default program-size cap (100) NACKed a single
    253-character name. The bootstrap raises the cap; the list here is the longest the fixture's limits allow."""
    await admin_app.parts.manager.create(CreateRequest())
    name = ".".join(["b" * 62] * 3 + ["a" + "0" * 62])
    deny = [f"{i}{name[1:]}" for i in range(8)]
    status, _, body = await http(admin_app, "PUT", "/v1/policy?wait=applied&timeout=60", body={"deny": deny})
    assert status == 200, body  # 502 rejected_by_envoy without the raised cap
    assert (body["applied"], len(body["deny"])) == (True, 8)
