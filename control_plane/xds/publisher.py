"""Turns session changes into snapshot changes, and waits for Envoy to confirm them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from control_plane.domain.session import Session
from control_plane.xds import render
from control_plane.xds.builders import EgressSettings, session_resource_name
from control_plane.xds.cache import Key, SnapshotCache
from control_plane.xds.resource import Resource
from control_plane.xds.types import CLUSTER, LISTENER, ROUTE


class ConfigPublisher:
    def __init__(
        self,
        cache: SnapshotCache,
        egress: EgressSettings,
        socket_path: Callable[[str], Path],
        jwks: Callable[[], dict[str, Any]],
        apply_timeout: float,
    ) -> None:
        self._cache = cache
        self._egress = egress
        self._socket_path = socket_path
        self._jwks = jwks
        self.apply_timeout = apply_timeout
        self._cluster = render.egress_cluster(egress)

    def ensure_node(self, node_id: str) -> None:
        if CLUSTER not in self._cache.snapshot(node_id).resources:
            self._cache.publish(node_id, [self._cluster])

    def put_session(self, session: Session) -> dict[Key, str | None]:
        """Publish a session's route and listener; returns the versions to wait for."""
        self.ensure_node(session.node_id)
        listener = render.session_listener(session, self._socket_path(session.id), self._jwks(), self._egress)
        return self._publish(session.node_id, [render.session_routes(session), listener])

    def put_routes(self, session: Session) -> dict[Key, str | None]:
        return self._publish(session.node_id, [render.session_routes(session)])

    def remove_session(self, session: Session) -> dict[Key, str | None]:
        name = session_resource_name(session.id)
        removals = [(LISTENER, name), (ROUTE, name)]
        self._cache.publish(session.node_id, removals=removals)
        return dict.fromkeys(removals)

    def _publish(self, node_id: str, resources: list[Resource]) -> dict[Key, str | None]:
        self._cache.publish(node_id, resources)
        return {(r.type_url, r.name): r.version for r in resources}

    async def wait(self, node_id: str, expected: dict[Key, str | None], timeout: float | None = None) -> None:
        await self._cache.wait_applied(node_id, expected, self.apply_timeout if timeout is None else timeout)
