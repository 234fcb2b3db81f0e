"""Immutable per-node snapshots of xDS resources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from control_plane.xds.resource import Resource
from control_plane.xds.types import LISTENER


class InconsistentSnapshot(Exception):
    """A listener references a route or shared filter config that the snapshot does not hold."""


@dataclass(frozen=True)
class Snapshot:
    resources: Mapping[str, Mapping[str, Resource]] = field(default_factory=dict)
    generation: int = 0

    def of_type(self, type_url: str) -> Mapping[str, Resource]:
        return self.resources.get(type_url, {})

    def changed(self, upserts: Iterable[Resource] = (), removals: Iterable[tuple[str, str]] = ()) -> Snapshot:
        """A new snapshot with `upserts` applied and `(type_url, name)` pairs removed, checked for consistency."""
        staged = {t: dict(r) for t, r in self.resources.items()}
        for res in upserts:
            staged.setdefault(res.type_url, {})[res.name] = res
        for type_url, name in removals:
            staged.get(type_url, {}).pop(name, None)
        snapshot = Snapshot(
            {t: MappingProxyType(r) for t, r in staged.items()},
            self.generation + 1,
        )
        snapshot.check()
        return snapshot

    def check(self) -> None:
        for listener in self.of_type(LISTENER).values():
            missing = [name for type_url, name in listener.references if name not in self.of_type(type_url)]
            if missing:
                raise InconsistentSnapshot(f"listener {listener.name} references missing resources {missing}")
