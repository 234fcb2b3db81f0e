"""The CLI without a service: global flags anywhere, encoded paths and queries, snake_case JSON, the new commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.cli.api import AdminApi, query, segment
from control_plane.cli.commands import session_dict
from control_plane.cli.context import CliContext
from control_plane.cli.files import remote
from control_plane.cli.main import main as run_cli

SID = "s-0123456789abcdef"


class RecordingTransport:
    """What the admin API would be asked, with canned answers."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.answers = answers or {}

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.calls.append((method, path, body))
        return self.answers.get(method, {"session_id": SID, "egress": [], "applied": False})

    def follow(self, path: str) -> Iterator[dict[str, Any]]:
        self.calls.append(("FOLLOW", path, None))
        return iter(())


@pytest.fixture()
def transport(monkeypatch: pytest.MonkeyPatch) -> RecordingTransport:
    recording = RecordingTransport()
    monkeypatch.setattr(CliContext, "admin_api", lambda self: AdminApi(recording))
    for name in ("SANDGATE_CONFIG", "SANDGATE_ADMIN_ADDR", "SANDGATE_GRPC_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDGATE_ADMIN_TOKEN", "t")
    return recording


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "egress", "ls", SID],
        ["egress", "--json", "ls", SID],
        ["egress", "ls", "--json", SID],
        ["egress", "ls", SID, "--json"],
    ],
)
def test_json_works_anywhere_on_the_line(
    transport: RecordingTransport, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    transport.answers["GET"] = {"egress": [{"host": "pypi.org", "ports": [443], "methods": []}]}
    assert run_cli(argv) == 0
    assert json.loads(capsys.readouterr().out) == [{"host": "pypi.org", "ports": [443], "methods": []}]


def test_without_json_a_table(transport: RecordingTransport, capsys: pytest.CaptureFixture[str]) -> None:
    transport.answers["GET"] = {"egress": [{"host": "pypi.org", "ports": [443], "methods": []}]}
    assert run_cli(["egress", "ls", SID]) == 0
    assert capsys.readouterr().out.splitlines() == ["HOST      PORTS  METHODS", "pypi.org  443    -"]


@pytest.mark.parametrize("position", [0, 3, 5])
def test_config_and_addresses_work_anywhere(
    transport: RecordingTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('admin_addr = "127.0.0.1:7001"\ngrpc_addr = "127.0.0.1:7002"\n')
    seen: list[CliContext] = []
    monkeypatch.setattr(CliContext, "admin_api", lambda self: seen.append(self) or AdminApi(transport))
    argv = ["egress", "ls", SID]
    flags = ["--config", str(config), "--grpc-addr", "127.0.0.1:7003"]
    assert run_cli([*argv[:position], *flags, *argv[position:]]) == 0
    (ctx,) = seen
    assert (ctx.settings.admin_addr, ctx.settings.grpc_addr) == ("127.0.0.1:7001", "127.0.0.1:7003")


def test_egress_rm_encodes_a_cidr_and_the_wait(transport: RecordingTransport) -> None:
    assert run_cli(["egress", "rm", SID, "10.0.0.0/30", "--wait"]) == 0
    assert transport.calls == [("DELETE", f"/v1/sessions/{SID}/egress/10.0.0.0%2F30?wait=applied", None)]


def test_egress_add_sends_the_rule(transport: RecordingTransport, capsys: pytest.CaptureFixture[str]) -> None:
    rule = {"host": "*.x.test", "ports": [8080], "methods": ["GET"]}
    transport.answers["POST"] = {"session_id": SID, "egress": [rule], "applied": True}
    assert run_cli(["egress", "add", SID, "*.x.test:8080", "--method", "get"]) == 0
    assert transport.calls == [("POST", f"/v1/sessions/{SID}/egress", {"host": "*.x.test", "ports": [8080],
                                                                        "methods": ["GET"]})]  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out == ["HOST      PORTS  METHODS", "*.x.test  8080   GET", "applied: every Envoy has ACKed the change"]


def test_decisions_query_is_encoded(transport: RecordingTransport, capsys: pytest.CaptureFixture[str]) -> None:
    transport.answers["GET"] = {"decisions": []}
    assert run_cli(["decisions", "--session", "a&verdict=allow", "--verdict", "deny", "--limit", "7", "--json"]) == 0
    assert transport.calls == [("GET", "/v1/decisions?limit=7&session_id=a%26verdict%3Dallow&verdict=deny", None)]
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("arg", "rule"),
    [
        ("Bücher.Example.:443", {"host": "xn--bcher-kva.example", "ports": [443], "methods": []}),
        ("fe80::/126", {"host": "fe80::/126", "ports": [], "methods": []}),
        ("[fe80::1]:443,8443", {"host": "fe80::1", "ports": [443, 8443], "methods": []}),
    ],
)
def test_egress_add_sends_the_spelling_the_schema_takes(transport: RecordingTransport, arg: str,
                                                        rule: dict[str, Any]) -> None:  # fmt: skip
    assert run_cli(["egress", "add", SID, arg]) == 0
    assert transport.calls == [("POST", f"/v1/sessions/{SID}/egress", rule)]


def test_segment_and_query() -> None:
    assert segment("*.a.test") == "%2A.a.test" and segment("fe80::/126") == "fe80%3A%3A%2F126"
    assert query({"a": "x y", "b": None, "c": "", "d": 3}) == "?a=x+y&d=3" and query({}) == ""


def test_policy_get_and_set(transport: RecordingTransport, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = {"default_egress": [{"host": "pypi.org", "ports": [443], "methods": []}], "deny": ["evil.test"]}
    transport.answers = {"GET": policy, "PUT": {**policy, "applied": True}}
    assert run_cli(["policy", "get"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "default rules of new sessions:", "HOST      PORTS  METHODS", "pypi.org  443    -",
        "denied to every session: evil.test",
    ]  # fmt: skip
    source = tmp_path / "policy.json"
    source.write_text(json.dumps({"deny": ["evil.test"]}))
    assert run_cli(["policy", "set", str(source), "--wait", "--json"]) == 0
    assert transport.calls[-1] == ("PUT", "/v1/policy?wait=applied", {"deny": ["evil.test"]})
    assert json.loads(capsys.readouterr().out)["applied"] is True


def test_policy_set_with_a_bad_file_names_it(transport: RecordingTransport, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    source = tmp_path / "policy.json"
    source.write_text("[1]")
    assert run_cli(["policy", "set", str(source)]) == 2
    assert capsys.readouterr().err.startswith(f"sandgate: FILE: {source} must hold a JSON object")
    assert transport.calls == []


def test_keys_rotate(transport: RecordingTransport, capsys: pytest.CaptureFixture[str]) -> None:
    transport.answers["POST"] = {"signing_key": "k2", "verifying_keys": ["k1", "k2"]}
    assert run_cli(["keys", "rotate"]) == 0
    assert transport.calls == [("POST", "/v1/signing-keys/rotate", None)]
    assert capsys.readouterr().out.splitlines() == ["signing key: k2", "verifying keys: k1, k2"]


def test_session_json_is_snake_case() -> None:
    s = pb.Session(id=SID, state=pb.READY, proxy_url="http://x", failure_reason="")
    s.expires_at.FromSeconds(60)
    s.egress.add(host="pypi.org", ports=[443])
    data = session_dict(s)
    assert {"proxy_url", "expires_at"} <= set(data) and data["egress"] == ["pypi.org:443"]
    assert not [k for k in data if k != k.lower()]


def test_cp_needs_exactly_one_sandbox_side(transport: RecordingTransport, capsys: pytest.CaptureFixture[str]) -> None:
    assert remote(f"{SID}:/tmp/x") == (SID, "/tmp/x") and remote("./x") is None and remote(f"{SID}:x") is None
    assert run_cli(["cp", "a", "b"]) == 2
    assert "exactly one side must be SESSION:PATH" in capsys.readouterr().err


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_covers_the_commands(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["completion", shell]) == 0
    script = capsys.readouterr().out
    for word in ("sandgate", "session", "egress", "policy", "keys", "cp", "decisions", "--admin-addr"):
        assert word in script
