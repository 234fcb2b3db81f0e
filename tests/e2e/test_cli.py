"""The `sandgate` CLI as a user runs it: success, bad input, and the service being down."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.service import SandgateProcess, free_port


def run(proc: SandgateProcess | None, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
    grpc_port, admin_port = (proc.grpc_port, proc.admin_port) if proc else (free_port(), free_port())
    env |= {
        "SANDGATE_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        "SANDGATE_ADMIN_ADDR": f"127.0.0.1:{admin_port}",
        "SANDGATE_API_TOKEN": proc.api_token if proc else "x",
        "SANDGATE_ADMIN_TOKEN": proc.admin_token if proc else "x",
    }
    return subprocess.run([sys.executable, "-m", "control_plane", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_session_lifecycle_with_json(sandgate: SandgateProcess) -> None:
    created = run(sandgate, "session", "create", "--allow", "allowed.test:80,8080", "--label", "cli=1", "--json")
    assert created.returncode == 0, created.stderr
    session = json.loads(created.stdout)
    sid = session["id"]
    assert session["state"] == "READY" and session["token"] and session["egress"] == ["allowed.test:80,8080"]
    listed = json.loads(run(sandgate, "session", "ls", "--label", "cli=1", "--json").stdout)
    assert [s["id"] for s in listed] == [sid] and "token" not in listed[0]
    assert json.loads(run(sandgate, "session", "get", sid, "--json").stdout)["id"] == sid
    executed = run(sandgate, "session", "exec", sid, "--", "sh", "-c", "cat; echo err >&2; exit 5", stdin="hi\n")
    assert (executed.returncode, executed.stdout, executed.stderr) == (5, "hi\n", "err\n")
    added = json.loads(run(sandgate, "egress", "add", sid, "other.test", "--port", "443", "--wait", "--json").stdout)
    assert (
        added["applied"]
        and {"host": "other.test", "ports": [443], "methods": [], "paths": [], "inspect": False, "credential": ""}
        in added["egress"]
    )
    table = run(sandgate, "egress", "ls", sid).stdout
    assert table.splitlines()[0].split() == ["HOST", "PORTS", "METHODS"] and "other.test" in table
    removed = run(sandgate, "egress", "rm", sid, "other.test", "--wait")
    assert removed.stdout.splitlines()[-1] == "applied: every Envoy has ACKed the change", removed.stderr
    assert "other.test" not in removed.stdout and "other.test" not in run(sandgate, "egress", "ls", sid).stdout
    denied = run(sandgate, "session", "exec", sid, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "http://other.test/")  # fmt: skip
    assert denied.stdout == "403"
    decisions = json.loads(run(sandgate, "decisions", "--session", sid, "--json").stdout)
    assert [(d["session_id"], d["verdict"], d["reason"], d["host"]) for d in decisions] == [
        (sid, "deny", "host-not-allowed", "other.test")
    ]
    assert run(sandgate, "session", "rm", sid).stdout.strip() == f"ended {sid}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["session", "create", "--allow", "bad host"], "egress[0].host"),
        (["session", "create", "--allow", "a.test:http"], "--allow"),
        (["session", "create", "--label", "novalue"], "--label"),
        (["session", "create", "--ttl", "0"], "ttl_seconds"),
        (["session", "get", "nope"], "session_id"),
        (["session", "exec", "s-0000000000000000", "--", "true"], "NOT_FOUND"),
        (["egress", "add", "s-0000000000000000", "a.test"], "not_found"),
    ],
)
def test_bad_input_is_one_line_on_stderr(sandgate: SandgateProcess, args: list[str], message: str) -> None:
    result = run(sandgate, *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("sandgate: ")


@pytest.mark.parametrize("args", [["session", "ls"], ["egress", "ls", "s-0000000000000000"], ["decisions"]])
def test_service_down(args: list[str]) -> None:
    result = run(None, *args)
    assert result.returncode == 3 and "is `sandgate serve` running?" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run(None, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: sandgate ")
    listed = result.stdout.split("COMMAND\n", 2)[-1].split("\n\n")[0]  # the block under the positional COMMAND
    commands = [line.split()[0] for line in listed.splitlines() if line.startswith("    ") and line.split()]
    expected = ["serve", "image", "session", "egress", "policy", "keys", "cp", "approvals", "secret", "decisions"]
    assert commands == [*expected, "completion"], result.stdout
    session_help = run(None, "session", "--help").stdout
    assert all(f"    {action} " in session_help for action in ("create", "ls", "get", "exec", "rm")), session_help


def test_bad_config_names_the_key(tmp_path: pytest.TempPathFactory) -> None:
    bad = tmp_path / "bad.toml"  # type: ignore[operator]
    bad.write_text('max_sessions = "many"\n')
    result = run(None, "session", "ls", "--config", str(bad))
    assert result.returncode == 2 and "max_sessions" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("no_such_setting = 1\n")
    assert "no_such_setting" in run(None, "serve", "--config", str(bad)).stderr


def test_cp_into_and_out_of_a_sandbox(sandgate: SandgateProcess, tmp_path: pytest.TempPathFactory) -> None:
    sid = run(sandgate, "session", "create", "-q").stdout.strip()
    local = tmp_path / "in.bin"  # type: ignore[operator]
    local.write_bytes(b"\x00sandgate\n" * 100)
    copied = run(sandgate, "cp", str(local), f"{sid}:/tmp/in.bin")
    assert (copied.returncode, copied.stdout.strip()) == (0, f"copied 1000 bytes: {local} -> {sid}:/tmp/in.bin")
    assert run(sandgate, "session", "exec", sid, "--", "wc", "-c", "/tmp/in.bin").stdout.split()[0] == "1000"
    back = tmp_path / "out.bin"  # type: ignore[operator]
    assert run(sandgate, "--json", "cp", f"{sid}:/tmp/in.bin", str(back)).returncode == 0
    assert back.read_bytes() == local.read_bytes()
    out = run(sandgate, "cp", f"{sid}:/tmp/in.bin", "-")
    assert out.stdout == local.read_text()
    missing = run(sandgate, "cp", f"{sid}:/tmp/nope", str(back))
    assert missing.returncode != 0 and missing.stderr.startswith("sandgate: ") and "Traceback" not in missing.stderr
    run(sandgate, "session", "rm", sid)
