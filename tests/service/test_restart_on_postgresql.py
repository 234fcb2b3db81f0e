"""With `database_url` on PostgreSQL, a restarted control plane finds its sessions, their rules, the
policy and the signing keys there, and serves them again (the real App and Envoy; no sandboxes)."""

from __future__ import annotations

from pathlib import Path

from control_plane.app import App
from control_plane.config import Settings
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import State
from control_plane.sessions.manager import CreateRequest
from control_plane.sessions.runtime import ContainerSpec
from tests.support.no_sandbox import NoSandboxRuntime
from tests.support.postgres import PostgresCluster


class SurvivingSandboxes(NoSandboxRuntime):
    """Sandboxes that outlive the control plane, as docker's containers do: `managed` reports them."""

    def __init__(self) -> None:
        self.running: dict[str, bool] = {}

    async def start(self, spec: ContainerSpec) -> str:
        self.running[spec.session_id] = True
        return await super().start(spec)

    async def remove(self, session_id: str) -> None:
        self.running.pop(session_id, None)

    async def managed(self, node_id: str) -> dict[str, bool]:
        return dict(self.running)


async def test_a_restart_on_postgresql_keeps_the_sessions(postgres: PostgresCluster, tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0", node_id="restart-pg",
        api_token="t", admin_token="t", warm_pool_size=0, database_url=postgres.new_database(),
    )  # fmt: skip
    sandboxes = SurvivingSandboxes()
    first = App(settings, runtime=sandboxes)
    await first.start()
    try:
        kept, _ = await first.manager.create(CreateRequest(egress=[{"host": "pypi.org", "ports": [443]}]))
        kept = await first.egress.add(kept.id, {"host": "example.com", "ports": [80]}, wait=30)
        ended, _ = await first.manager.create(CreateRequest())
        await first.manager.delete(ended.id)
        await first.egress.put_policy({"deny": ["evil.test"]}, wait=30)
        signing_key = first.keyring.current
    finally:
        await first.stop()
    assert not (settings.state_dir / "sandgate.db").exists()  # the state is in PostgreSQL only

    again = App(settings, runtime=sandboxes)
    await again.start()
    try:
        assert again.reconciled.adopted == [kept.id] and not again.reconciled.failed
        assert [s.id for s in again.registry.all()] == [kept.id]
        back = again.registry.get(kept.id)
        assert back == kept and back.state == State.READY
        assert back.egress == (EgressRule("example.com", (80,), ()), EgressRule("pypi.org", (443,), ()))
        assert again.egress.policy().deny == ("evil.test",)
        assert again.keyring.current == signing_key  # the tokens it signed still verify
        await again.egress.add(kept.id, {"host": "files.pythonhosted.org", "ports": [443]}, wait=30)  # served again
    finally:
        await again.stop()
