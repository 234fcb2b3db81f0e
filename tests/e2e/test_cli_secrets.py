"""`sandgate secret set|ls|rm` and the rule options --inspect, --path and --credential, against the running service."""

from __future__ import annotations

import json

from tests.e2e.test_cli import run
from tests.support.service import SandgateProcess


def test_secrets_and_inspected_rules_from_the_command_line(sandgate: SandgateProcess) -> None:
    value = "cli-secret-value-0123456789"
    stored = run(sandgate, "secret", "set", "cli-key", "--format", "Bearer {value}", "--json", stdin=value + "\n")
    assert stored.returncode == 0 and value not in stored.stdout, stored.stderr
    assert json.loads(stored.stdout)["placeholder"].startswith("sandgate-placeholder-")
    listed = run(sandgate, "secret", "ls")
    assert "cli-key" in listed.stdout and "Authorization" in listed.stdout and value not in listed.stdout
    created = run(sandgate, "session", "create", "--allow", "allowed.test:443", "--inspect", "allowed.test",
                  "--path", "allowed.test=/v1/**", "--credential", "allowed.test=cli-key", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["id"]
    rules = json.loads(run(sandgate, "egress", "ls", sid, "--json").stdout)
    assert rules == [{"host": "allowed.test", "ports": [443], "methods": [], "paths": ["/v1/**"],
                      "inspect": True, "credential": "cli-key"}]  # fmt: skip
    added = run(sandgate, "egress", "add", sid, "other.test", "--port", "443", "--inspect", "--path", "/a/*",
                "--method", "GET", "--wait", "--json")  # fmt: skip
    assert json.loads(added.stdout)["egress"][1]["paths"] == ["/a/*"], added.stderr
    refused = run(sandgate, "egress", "add", sid, "other.test", "--credential", "cli-key")
    assert refused.returncode != 0 and "inspect" in refused.stderr
    assert run(sandgate, "secret", "rm", "cli-key").returncode != 0  # a rule names it
    assert run(sandgate, "session", "rm", sid).returncode == 0
    assert run(sandgate, "secret", "rm", "cli-key").returncode == 0
    assert "cli-key" not in run(sandgate, "secret", "ls").stdout
