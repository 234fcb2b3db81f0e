"""reconcile after a restart: live READY sessions are adopted, sessions without a running container fail,
containers and directories without a session are removed, and runsc orphans are deleted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from control_plane.domain.session import Session, State
from control_plane.sessions.reconcile import NOT_RUNNING_AT_START, reconcile
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerSpec
from control_plane.store import Store
from tests.support.core import IMAGE, LIMITS, NODE, Clock
from tests.support.no_sandbox import NoSandboxRuntime


def session(n: int, state: State) -> Session:
    return Session(f"s-{n:016x}", state, NODE, IMAGE, 1.0, 2.0, (), LIMITS)


async def test_reconcile_makes_runtime_directories_and_store_agree(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandgate.db")
    registry = SessionRegistry(store, Clock())
    sessions_dir = tmp_path / "sessions"
    runtime = NoSandboxRuntime(orphans=["runsc-orphan"])
    live, stopped, pending, ended_ok = (session(1, State.READY), session(2, State.READY),
                                        session(3, State.PENDING), session(4, State.FAILED))  # fmt: skip
    for s in (live, stopped, pending, ended_ok):
        await registry.add(s)
    for sid, node in ((live.id, NODE), (stopped.id, NODE), ("s-00000000000000ff", NODE), ("s-other", "other")):
        await runtime.start(ContainerSpec(sid, node, IMAGE, LIMITS, sessions_dir / sid, 3128))
    runtime.containers[stopped.id].running = False
    for sid in (live.id, "s-00000000000000ee"):
        (sessions_dir / sid).mkdir(parents=True)

    report = await reconcile(registry, runtime, NODE, sessions_dir)

    assert report.adopted == [live.id]
    assert sorted(report.failed) == sorted([stopped.id, pending.id])
    assert sorted(report.removed_containers) == sorted([stopped.id, "s-00000000000000ff"])
    assert report.removed_dirs == ["s-00000000000000ee"] and report.orphaned_sandboxes == ["runsc-orphan"]
    assert set(runtime.containers) == {live.id, "s-other"}  # another node's container is not ours
    assert [p.name for p in sessions_dir.iterdir()] == [live.id]
    stored = {s.id: s for s in store.sessions()}
    assert stored[live.id] == live and stored[ended_ok.id] == ended_ok
    assert stored[stopped.id] == replace(stopped, state=State.FAILED, failure_reason=NOT_RUNNING_AT_START)
    store.close()


async def test_reconcile_of_nothing_reports_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandgate.db")
    report = await reconcile(SessionRegistry(store, Clock()), NoSandboxRuntime(), NODE, tmp_path / "absent")
    assert (report.adopted, report.failed, report.removed_containers, report.removed_dirs) == ([], [], [], [])
    store.close()
