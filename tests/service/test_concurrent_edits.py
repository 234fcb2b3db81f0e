"""Edits that wait for the store do not lose each other: of two made at once, the second sees the first
(on SQLite and on PostgreSQL, with the real registry, editor and publisher; no Envoy is asked to apply)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from control_plane.domain.policy import Policy
from control_plane.domain.session import Limits, Session, State
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.registry import SessionRegistry
from control_plane.store import Store
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher


async def test_rules_added_at_once_are_all_kept(database_url: str, tmp_path: Path) -> None:
    store = Store(database_url)
    try:
        registry = SessionRegistry(store, time.time)
        publisher = ConfigPublisher(
            SnapshotCache(), EgressSettings(), lambda sid: tmp_path / sid, lambda: {"keys": []}, Policy, 5
        )
        publisher.ensure_node("node")
        editor = EgressEditor(registry, store, publisher)
        s = await registry.add(Session("s-0000000000000001", State.READY, "node", "img", time.time(),
                                       time.time() + 600, (), Limits(64, 1, 512)))  # fmt: skip
        hosts = [f"h{i}.test" for i in range(8)]
        await asyncio.gather(*(editor.add(s.id, {"host": h, "ports": [443]}, None) for h in hosts))
        assert sorted(r.host for r in registry.get(s.id).egress) == hosts
        assert sorted(r.host for r in store.sessions()[0].egress) == hosts
    finally:
        store.close()
