"""Sessions to xDS resources. Each resource is serialized once and versioned by its content."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envoy_data_plane.envoy.config.cluster.v3 import Cluster
from envoy_data_plane.envoy.config.core.v3 import TypedExtensionConfig
from envoy_data_plane.envoy.config.listener.v3 import Listener
from envoy_data_plane.envoy.config.route.v3 import RouteConfiguration, VirtualHost
from envoy_data_plane.envoy.extensions.transport_sockets.tls.v3 import Secret

from control_plane.credentials.secret import Injection
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import Session
from control_plane.inspection.ca import Leaf
from control_plane.xds.builders import EgressSettings, inspect_name, session_resource_name
from control_plane.xds.builders.cluster import render_egress_cluster
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
from control_plane.xds.resource import Resource, VirtualHostCache, build, build_routes
from control_plane.xds.types import FILTER_CONFIG, ROUTE, SECRET, register_message_types

_VIRTUAL_HOSTS = VirtualHostCache()


def egress_cluster(settings: EgressSettings) -> Resource:
    register_message_types()
    return build(Cluster, render_egress_cluster(settings))


def upstream_trust(trusted_ca: str) -> Resource:
    register_message_types()
    return build(Secret, render_upstream_trust(trusted_ca))


def inspect_resources(
    session: Session,
    rules: tuple[EgressRule, ...],
    leaves: Mapping[str, Leaf],
    credentials: Mapping[str, Injection],
    settings: EgressSettings,
) -> list[Resource]:
    """What a session with inspected rules needs besides its listener and routes; none without such rules."""
    register_message_types()
    hosts = tuple(r.host for r in rules if r.inspect)
    if not hosts:
        return []
    name = inspect_name(session.id)
    secrets = [build(Secret, render_leaf_secret(session.id, h, leaves[h].chain_pem, leaves[h].key_pem)) for h in hosts]
    needs = ((ROUTE, name), *((SECRET, leaf_secret_name(session.id, h)) for h in hosts))
    upstreams = [
        build(Cluster, render_upstream_cluster(session.id, r.host, port, settings))
        for r in rules
        if r.inspect
        for port in r.ports
    ]
    return [
        build(Cluster, render_inspect_cluster(session.id)),
        *upstreams,
        *secrets,
        build(Listener, render_inspect_listener(session.id, hosts, settings), references=needs),
        build(RouteConfiguration, render_inspect_routes(session.id, rules, credentials)),
    ]


def ended_inspect_routes(session: Session) -> Resource:
    register_message_types()
    config = render_ended_routes(session.id)
    return build(RouteConfiguration, {**config, "name": inspect_name(session.id)})


def shared_filters(settings: EgressSettings) -> list[Resource]:
    register_message_types()
    configs = (render_unwrap_token_filter(), render_destinations_filter(settings))
    return [build(TypedExtensionConfig, config) for config in configs]


def session_listener(session: Session, socket_path: Path, jwks: dict[str, Any], settings: EgressSettings) -> Resource:
    register_message_types()
    config = render_session_listener(session.id, str(socket_path), jwks, settings)
    needs = (
        (ROUTE, session_resource_name(session.id)),
        (FILTER_CONFIG, UNWRAP_TOKEN_FILTER),
        (FILTER_CONFIG, DESTINATIONS_FILTER),
    )
    return build(Listener, config, references=needs)


def session_routes(
    session: Session, policy: Policy, authz_every_connect: bool = False, injections: tuple[Injection, ...] = ()
) -> Resource:
    register_message_types()
    rules = policy.effective(session.egress)
    config = render_session_routes(session.id, rules, policy.deny, session.report_only, authz_every_connect, injections)
    return build_routes(config, VirtualHost, _VIRTUAL_HOSTS)


def ended_routes(session: Session) -> Resource:
    register_message_types()
    return build(RouteConfiguration, render_ended_routes(session.id))
