"""The snapshot cache: the newest snapshot per Envoy node, the streams watching it, and what they ACKed.

The ADS server reads snapshots and reports ACKs and NACKs; the session manager publishes changes and
waits until every connected Envoy of a node has applied them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from control_plane.errors import NotApplied, Rejected, Unavailable
from control_plane.xds.resource import Resource
from control_plane.xds.snapshot import Snapshot

Key = tuple[str, str]  # (type_url, name)


@dataclass(eq=False)
class StreamView:
    """What one connected Envoy stream has confirmed, as the server reports it."""

    node_id: str
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    acked: dict[Key, str] = field(default_factory=dict)
    nacked: dict[Key, tuple[str, str]] = field(default_factory=dict)

    def wants(self, type_url: str, name: str) -> bool:
        """Whether this stream subscribes to the resource (a shared filter config no listener uses is not)."""
        return True


class SnapshotCache:
    """The newest snapshot of each node, the Envoy streams watching it, and what each has ACKed or NACKed."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._streams: dict[str, set[StreamView]] = {}
        self._changed = asyncio.Condition()

    def snapshot(self, node_id: str) -> Snapshot:
        """The node's current snapshot (an empty one for a node never published to)."""
        return self._snapshots.get(node_id, Snapshot())

    def publish(self, node_id: str, upserts: Iterable[Resource] = (), removals: Iterable[Key] = ()) -> None:
        """Replace resources of a node and wake its streams. Raises InconsistentSnapshot and changes nothing."""
        self._snapshots[node_id] = self.snapshot(node_id).changed(upserts, removals)
        for stream in self._streams.get(node_id, ()):
            stream.wakeup.set()

    def streams(self, node_id: str) -> frozenset[StreamView]:
        """The node's connected Envoy streams."""
        return frozenset(self._streams.get(node_id, ()))

    def in_sync(self, node_id: str) -> bool:
        """An Envoy of the node is connected and every one has ACKed everything in the current snapshot."""
        streams = self._streams.get(node_id)
        if not streams:
            return False
        wanted = {(t, n): r.version for t, rs in self.snapshot(node_id).resources.items() for n, r in rs.items()}
        return all(all(s.acked.get(k) == v for k, v in wanted.items() if s.wants(*k)) for s in streams)

    async def attach(self, stream: StreamView) -> None:
        """A stream connected: it counts for `in_sync` and `wait_applied` from now on."""
        self._streams.setdefault(stream.node_id, set()).add(stream)
        await self.report()

    async def detach(self, stream: StreamView) -> None:
        """A stream left."""
        streams = self._streams.get(stream.node_id, set())
        streams.discard(stream)
        if not streams:  # node ids come from peers: keep no entry per id once its streams are gone
            self._streams.pop(stream.node_id, None)
        await self.report()

    async def report(self) -> None:
        """Called by the server after a stream ACKs, NACKs, connects or leaves."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_applied(self, node_id: str, expected: Mapping[Key, str | None], timeout: float) -> None:
        """Wait until every stream of `node_id` holds each key at its version (None: removed).

        Raises Rejected on a NACK of an expected version, NotApplied on timeout, and Unavailable if
        no Envoy of that node is connected when the time runs out.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self._applied(node_id, expected))
        except TimeoutError:
            raise self._timeout_error(node_id, expected) from None

    def _applied(self, node_id: str, expected: Mapping[Key, str | None]) -> bool:
        streams = self._streams.get(node_id)
        if not streams:
            return False
        for stream in streams:
            for key, version in expected.items():
                nack = stream.nacked.get(key)
                if nack and nack[0] == version:
                    # Envoy's own words name its internals; the ADS server has logged them.
                    raise Rejected(
                        f"Envoy rejected {key[1]}; the configuration it last accepted stays in force "
                        "(the control plane log has Envoy's reason)"
                    )
                if stream.acked.get(key) != version:
                    return False
        return True

    def _timeout_error(self, node_id: str, expected: Mapping[Key, str | None]) -> Exception:
        streams = self._streams.get(node_id)
        if not streams:
            return Unavailable(f"no Envoy of node {node_id!r} is connected to the control plane")
        pending = sorted({key[1] for s in streams for key, v in expected.items() if s.acked.get(key) != v})
        return NotApplied(f"Envoy has not yet applied: {', '.join(pending)}")
