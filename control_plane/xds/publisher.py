"""Turns session and policy changes into snapshot changes, and waits for Envoy to confirm them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from control_plane.domain.policy import Policy
from control_plane.domain.session import Session
from control_plane.envoy_contract import session_resource_name
from control_plane.xds import render
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import Key, SnapshotCache
from control_plane.xds.resource import Resource
from control_plane.xds.types import CLUSTER, LISTENER, ROUTE

Expected = dict[str, dict[Key, str | None]]  # node id -> resource -> version (None: removed)


class ConfigPublisher:
    """Renders sessions and the policy into a node's snapshot and says what to wait for (`Expected`);
    `wait` waits until every Envoy of the node applied it."""

    def __init__(
        self,
        cache: SnapshotCache,
        egress: EgressSettings,
        socket_path: Callable[[str], Path],
        jwks: Callable[[], dict[str, Any]],
        policy: Callable[[], Policy],
        apply_timeout: float,
    ) -> None:
        self._cache = cache
        self.egress = egress
        self._socket_path = socket_path
        self._jwks = jwks
        self._policy = policy
        self.apply_timeout = apply_timeout
        self._shared = [*render.clusters(egress), *render.shared_filters(egress)]
        self._nodes: set[str] = set()

    def ensure_node(self, node_id: str) -> None:
        """What every session of a node shares: the egress cluster and the shared filter configs."""
        self._nodes.add(node_id)
        if CLUSTER not in self._cache.snapshot(node_id).resources:
            self._cache.publish(node_id, self._shared)

    def set_forbidden(self, cidrs: tuple[str, ...]) -> None:
        """Replace the forbidden ranges on every node (this host's addresses changed).

        Only the shared forbidden-destinations filter changes; Envoy applies it to new requests at once
        (ECDS), without touching listeners, routes or open connections.
        """
        if cidrs == self.egress.forbidden_cidrs:
            return
        self.egress = dataclasses.replace(self.egress, forbidden_cidrs=cidrs)
        self._shared = [*render.clusters(self.egress), *render.shared_filters(self.egress)]
        for node_id in self._nodes:
            self._cache.publish(node_id, self._shared)

    def put_session(self, session: Session) -> Expected:
        """Publish a session's route and listener."""
        self.ensure_node(session.node_id)
        listener = render.session_listener(session, self._socket_path(session.id), self._jwks(), self.egress)
        return self._publish(session.node_id, [self._routes(session, self._policy()), listener])

    def put_listeners(self, *sessions: Session) -> Expected:
        """Re-render listeners (e.g. after a key rotation); their open connections drain."""
        expected: Expected = {}
        jwks = self._jwks()
        for s in sessions:
            listener = render.session_listener(s, self._socket_path(s.id), jwks, self.egress)
            for node, keys in self._publish(s.node_id, [listener]).items():
                expected.setdefault(node, {}).update(keys)
        return expected

    def put_routes(self, *sessions: Session) -> Expected:
        """Re-render only the routes of these sessions."""
        expected: Expected = {}
        policy = self._policy()
        by_node: dict[str, list[Resource]] = {}
        for session in sessions:
            by_node.setdefault(session.node_id, []).append(self._routes(session, policy))
        for node_id, resources in by_node.items():
            expected.update(self._publish(node_id, resources))
        return expected

    def _routes(self, session: Session, policy: Policy) -> Resource:
        sandbox_api = bool(self.egress.sandbox_api_socket)
        return render.session_routes(session, policy, self.egress.authz_every_connect, sandbox_api)

    def deny_all(self, session: Session) -> Expected:
        """Routes that refuse everything: revokes a session on its open connections before its listener goes."""
        return self._publish(session.node_id, [render.ended_routes(session)])

    def remove_session(self, session: Session) -> Expected:
        """Remove the session's listener and routes from its node's snapshot; what to wait for."""
        name = session_resource_name(session.id)
        removals = [(LISTENER, name), (ROUTE, name)]
        self._cache.publish(session.node_id, removals=removals)
        return {session.node_id: dict.fromkeys(removals)}

    def _publish(self, node_id: str, resources: list[Resource]) -> Expected:
        self._cache.publish(node_id, resources)
        return {node_id: {(r.type_url, r.name): r.version for r in resources}}

    async def wait(self, expected: Expected, timeout: float | None = None) -> None:
        """Until every connected Envoy of each node has ACKed; raises NotApplied, Rejected or Unavailable."""
        limit = self.apply_timeout if timeout is None else timeout
        await asyncio.gather(*(self._cache.wait_applied(node, keys, limit) for node, keys in expected.items()))
