"""With `database_url` on PostgreSQL, a restarted control plane finds its sessions, their rules, the
policy and the signing keys there, and serves them again (the real App and Envoy; no sandboxes)."""

from __future__ import annotations

from pathlib import Path

from control_plane.app import App
from control_plane.config import Settings
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import State
from control_plane.sessions.manager import CreateRequest
from tests.support.no_sandbox import NoSandboxRuntime
from tests.support.postgres import PostgresCluster


async def test_a_restart_on_postgresql_keeps_the_sessions(postgres: PostgresCluster, short_state: Path) -> None:
    settings = Settings(
        state_dir=short_state, grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0", node_id="restart-pg",
        api_token="t", admin_token="t", warm_pool_size=0, database_url=postgres.new_database(),
    )  # fmt: skip
    sandboxes = NoSandboxRuntime()  # its containers outlive the App, as docker's do
    first = App(settings, runtime=sandboxes)
    await first.start()
    try:
        kept, _ = await first.parts.manager.create(CreateRequest(egress=[{"host": "pypi.org", "ports": [443]}]))
        kept = await first.parts.egress.add(kept.id, {"host": "example.com", "ports": [80]}, wait=30)
        ended, _ = await first.parts.manager.create(CreateRequest())
        await first.parts.manager.delete(ended.id)
        await first.parts.egress.put_policy({"deny": ["evil.test"]}, wait=30)
        signing_key = first.parts.keyring.current
    finally:
        await first.stop()
    assert not (short_state / "sandgate.db").exists()  # the state is in PostgreSQL only

    again = App(settings, runtime=sandboxes)
    await again.start()
    try:
        assert again.reconciled.adopted == [kept.id] and not again.reconciled.failed
        assert [s.id for s in again.parts.registry.all()] == [kept.id]
        back = again.parts.registry.get(kept.id)
        assert back == kept and back.state == State.READY
        assert back.egress == (EgressRule("example.com", (80,), ()), EgressRule("pypi.org", (443,), ()))
        assert again.parts.egress.policy().deny == ("evil.test",)
        assert again.parts.keyring.current == signing_key  # the tokens it signed still verify
        rule = {"host": "files.pythonhosted.org", "ports": [443]}
        await again.parts.egress.add(kept.id, rule, wait=30)  # served again
    finally:
        await again.stop()
