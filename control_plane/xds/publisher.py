"""Turns session and policy changes into snapshot changes, and waits for Envoy to confirm them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from control_plane.credentials.secret import Injection
from control_plane.domain.policy import Policy
from control_plane.domain.session import Session
from control_plane.envoy_contract import session_resource_name
from control_plane.errors import Unavailable
from control_plane.inspection.ca import Leaf
from control_plane.xds import render
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import Key, SnapshotCache
from control_plane.xds.resource import Resource
from control_plane.xds.types import CLUSTER, LISTENER, ROUTE

Expected = dict[str, dict[Key, str | None]]  # node id -> resource -> version (None: removed)
NO_TRUST = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"


class Inspection(Protocol):
    """What rendering an inspected session needs from outside: leaf certificates and the credentials' values."""

    def leaves(self, session: Session, names: tuple[str, ...]) -> Mapping[str, Leaf]: ...
    def credentials(self) -> Mapping[str, Injection]: ...
    def trusted_ca(self) -> str: ...
    def has_bundle(self, session_id: str) -> bool: ...
    def forget(self, session_id: str) -> None: ...


class NoInspection:
    """A publisher without inspection (some tests): an inspected rule cannot be rendered."""

    def leaves(self, session: Session, names: tuple[str, ...]) -> Mapping[str, Leaf]:
        if names:
            raise Unavailable("this control plane has no inspection configured")
        return {}

    def credentials(self) -> Mapping[str, Injection]:
        return {}

    def trusted_ca(self) -> str:
        return NO_TRUST

    def has_bundle(self, session_id: str) -> bool:
        return False

    def forget(self, session_id: str) -> None:
        pass


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
        inspection: Inspection | None = None,
    ) -> None:
        self._cache = cache
        self.egress = egress
        self._socket_path = socket_path
        self._jwks = jwks
        self._policy = policy
        self.apply_timeout = apply_timeout
        self._inspection = inspection or NoInspection()
        self._shared = self._render_shared()
        self._nodes: set[str] = set()
        self._inspected: dict[str, set[Key]] = {}  # session id -> its inspection resources in the cache

    def _render_shared(self) -> list[Resource]:
        trust = render.upstream_trust(self._inspection.trusted_ca())
        return [*render.clusters(self.egress), trust, *render.shared_filters(self.egress)]

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
        self._shared = self._render_shared()
        for node_id in self._nodes:
            self._cache.publish(node_id, self._shared)

    def put_session(self, session: Session) -> Expected:
        """Publish a session's route and listener."""
        self.ensure_node(session.node_id)
        listener = render.session_listener(session, self._socket_path(session.id), self._jwks(), self.egress)
        return self._publish_session(session, [*self._routes(session, self._policy()), listener])

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
        for session in sessions:
            for node, keys in self._publish_session(session, self._routes(session, policy)).items():
                expected.setdefault(node, {}).update(keys)
        return expected

    def _routes(self, session: Session, policy: Policy) -> list[Resource]:
        """The session's routes, and what its inspected rules need (internal listener, leaves, inner routes)."""
        rules = policy.effective(session.egress)
        names = tuple(r.host for r in rules if r.inspect)
        leaves = self._inspection.leaves(session, names)
        stored = self._inspection.credentials()
        own = {r.credential: stored[r.credential] for r in rules if r.credential in stored}
        inspect = render.inspect_resources(session, rules, leaves, own, self.egress)
        guards = tuple(own[name] for name in sorted(own))
        sandbox_api = bool(self.egress.sandbox_api_socket)
        routes = render.session_routes(session, policy, self.egress.authz_every_connect, sandbox_api, guards)
        return [*inspect, routes]

    def _publish_session(self, session: Session, resources: list[Resource]) -> Expected:
        """Publish, and remove the inspection resources the session no longer needs."""
        own = session_resource_name(session.id)  # the listener's and the routes' name; the rest is inspection's
        keys = {(r.type_url, r.name) for r in resources if r.name != own}
        stale = self._inspected.get(session.id, set()) - keys
        self._inspected[session.id] = keys
        self._cache.publish(session.node_id, resources, removals=sorted(stale))
        expected: dict[Key, str | None] = {(r.type_url, r.name): r.version for r in resources}
        return {session.node_id: {**expected, **dict.fromkeys(stale)}}

    def deny_all(self, session: Session) -> Expected:
        """Routes that refuse everything: revokes a session on its open connections before its listener goes."""
        ended = [render.ended_routes(session)]
        if self._inspected.get(session.id):  # requests inside open inspected tunnels are refused too
            ended.append(render.ended_inspect_routes(session))
        return self._publish(session.node_id, ended)

    def remove_session(self, session: Session) -> Expected:
        """Remove the session's listener and routes from its node's snapshot; what to wait for."""
        name = session_resource_name(session.id)
        removals = [(LISTENER, name), (ROUTE, name), *sorted(self._inspected.pop(session.id, set()))]
        self._inspection.forget(session.id)
        self._cache.publish(session.node_id, removals=removals)
        return {session.node_id: dict.fromkeys(removals)}

    def inspects(self, session: Session) -> bool:
        """Whether the session has (or had) inspected rules: its sandbox then trusts its own CA bundle."""
        return any(r.inspect for r in session.egress) or self._inspection.has_bundle(session.id)

    def _publish(self, node_id: str, resources: list[Resource]) -> Expected:
        self._cache.publish(node_id, resources)
        return {node_id: {(r.type_url, r.name): r.version for r in resources}}

    async def wait(self, expected: Expected, timeout: float | None = None) -> None:
        """Until every connected Envoy of each node has ACKed; raises NotApplied, Rejected or Unavailable."""
        limit = self.apply_timeout if timeout is None else timeout
        await asyncio.gather(*(self._cache.wait_applied(node, keys, limit) for node, keys in expected.items()))
