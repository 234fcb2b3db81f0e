"""Sessions to xDS resources. Each resource is serialized once and versioned by its content."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_plane.credentials.secret import Injection
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import OnUnlisted, Session
from control_plane.envoy_contract import inspect_name, session_resource_name
from control_plane.inspection.ca import Leaf
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.cluster import render_egress_cluster, render_sandbox_api_cluster
from control_plane.xds.builders.inspect import (
    leaf_secret_name,
    render_inspect_cluster,
    render_inspect_listener,
    render_inspect_routes,
    render_leaf_secret,
    render_upstream_cluster,
    render_upstream_trust,
)
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.builders.route import render_ended_routes, render_session_routes
from control_plane.xds.builders.shared import (
    DESTINATIONS_FILTER,
    UNWRAP_TOKEN_FILTER,
    render_destinations_filter,
    render_unwrap_token_filter,
)
from control_plane.xds.resource import Resource, build, build_routes
from control_plane.xds.types import CLUSTER, FILTER_CONFIG, LISTENER, ROUTE, SECRET


def egress_cluster(settings: EgressSettings) -> Resource:
    return build(CLUSTER, render_egress_cluster(settings))


def clusters(settings: EgressSettings) -> list[Resource]:
    """The egress cluster, and the sandbox API's if the control plane serves one."""
    found = [egress_cluster(settings)]
    if settings.sandbox_api_socket:
        found.append(build(CLUSTER, render_sandbox_api_cluster(settings.sandbox_api_socket)))
    return found


def upstream_trust(trusted_ca: str) -> Resource:
    """The SDS trust store every inspected upstream is verified against (public certificates only)."""
    return build(SECRET, render_upstream_trust(trusted_ca))


def inspect_resources(
    session: Session,
    rules: tuple[EgressRule, ...],
    leaves: Mapping[str, Leaf],
    credentials: Mapping[str, Injection],
    settings: EgressSettings,
) -> list[Resource]:
    """What a session with inspected rules needs besides its listener and routes; none without such rules.
    The leaves (private keys) and the inner routes (credentials' values) are never written to disk."""
    hosts = tuple(r.host for r in rules if r.inspect)
    if not hosts:
        return []
    name = inspect_name(session.id)
    secrets = [
        build(SECRET, render_leaf_secret(session.id, h, leaves[h].chain_pem, leaves[h].key_pem), private=True)
        for h in hosts
    ]
    needs = ((ROUTE, name), *((SECRET, leaf_secret_name(session.id, h)) for h in hosts))
    upstreams = [
        build(CLUSTER, render_upstream_cluster(session.id, r.host, port, settings))
        for r in rules
        if r.inspect
        for port in r.ports
    ]
    return [
        build(CLUSTER, render_inspect_cluster(session.id)),
        *upstreams,
        *secrets,
        build(LISTENER, render_inspect_listener(session.id, hosts, settings), references=needs),
        build(ROUTE, render_inspect_routes(session.id, rules, credentials), private=True),
    ]


def ended_inspect_routes(session: Session) -> Resource:
    """What a session's inspected tunnels serve between its end and its removal: nothing."""
    config = render_ended_routes(session.id)
    return build(ROUTE, {**config, "name": inspect_name(session.id)})


def shared_filters(settings: EgressSettings) -> list[Resource]:
    configs = (render_unwrap_token_filter(), render_destinations_filter(settings))
    return [build(FILTER_CONFIG, config) for config in configs]


def session_listener(session: Session, socket_path: Path, jwks: dict[str, Any], settings: EgressSettings) -> Resource:
    holds = session.on_unlisted == OnUnlisted.ASK
    config = render_session_listener(session.id, str(socket_path), jwks, settings, holds)
    needs = (
        (ROUTE, session_resource_name(session.id)),
        (FILTER_CONFIG, UNWRAP_TOKEN_FILTER),
        (FILTER_CONFIG, DESTINATIONS_FILTER),
    )
    return build(LISTENER, config, references=needs)


def session_routes(
    session: Session,
    policy: Policy,
    authz_every_connect: bool = False,
    sandbox_api: bool = False,
    injections: tuple[Injection, ...] = (),
) -> Resource:
    rules = policy.effective(session.egress)
    ask = session.on_unlisted == OnUnlisted.ASK
    config = render_session_routes(
        session.id, rules, policy.deny, session.report_only, authz_every_connect, ask, sandbox_api, injections
    )
    return build_routes(config)


def ended_routes(session: Session) -> Resource:
    return build(ROUTE, render_ended_routes(session.id))
