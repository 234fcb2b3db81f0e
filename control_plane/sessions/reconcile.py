"""After a restart: make docker, the socket directories and the store agree again.

Live READY sessions are adopted (their config is pushed again by the caller); containers without a
session are destroyed; sessions without a running container become FAILED and are cleaned up; runsc
processes of failed starts are deleted.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from control_plane.domain.session import State
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime

log = logging.getLogger(__name__)
NOT_RUNNING_AT_START = "sandbox-exited: its container was not running when the control plane started"


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removed_containers: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    orphaned_sandboxes: list[str] = field(default_factory=list)


async def reconcile(
    registry: SessionRegistry, runtime: ContainerRuntime, node_id: str, sessions_dir: Path
) -> ReconcileReport:
    """Make the runtime, the session directories and the store agree after a restart; what was done.
    Raises what the runtime raises (Unavailable) when it cannot list or remove containers."""
    report = ReconcileReport()
    running = await runtime.managed(node_id)
    for session in registry.all():
        if session.state == State.READY and running.get(session.id):
            report.adopted.append(session.id)
        elif session.state in (State.READY, State.PENDING):
            await registry.save(replace(session, state=State.FAILED, failure_reason=NOT_RUNNING_AT_START))
            report.failed.append(session.id)
    live = set(report.adopted)
    for session_id in running:
        if session_id not in live:
            await runtime.remove(session_id)
            report.removed_containers.append(session_id)
    report.orphaned_sandboxes = await runtime.delete_orphans()
    report.removed_dirs = _remove_stale_dirs(sessions_dir, live)
    log.info(
        "reconciled: %d adopted, %d failed, %d containers and %d directories removed, %d runsc orphans",
        len(report.adopted), len(report.failed), len(report.removed_containers), len(report.removed_dirs),
        len(report.orphaned_sandboxes),
    )  # fmt: skip
    return report


def _remove_stale_dirs(sessions_dir: Path, live: set[str]) -> list[str]:
    stale = [p for p in sessions_dir.iterdir() if p.is_dir() and p.name not in live] if sessions_dir.exists() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in stale]
