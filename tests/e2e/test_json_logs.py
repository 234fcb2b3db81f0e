"""`log_format = "json"`: everything the service writes is one JSON object per line."""

from __future__ import annotations

import json

from tests.e2e.conftest import OwnSandgate


def test_the_service_logs_one_json_object_per_line(own_sandgate_with: OwnSandgate) -> None:
    proc = own_sandgate_with(log_format="json")
    with proc.client() as c:
        session = c.create()
        c.delete(session.id)
    proc.stop()
    entries = [json.loads(line) for line in proc.log_path.read_text().splitlines()]  # each line parses alone
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert any(e["message"] == "serving" and e["grpc_addr"] == f"127.0.0.1:{proc.grpc_port}" for e in entries)
    assert any(e.get("session_id") == session.id and e["logger"].endswith("manager") for e in entries)
