"""Sessions to xDS resources. Each resource is serialized once and versioned by its content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envoy_data_plane.envoy.config.cluster.v3 import Cluster
from envoy_data_plane.envoy.config.core.v3 import TypedExtensionConfig
from envoy_data_plane.envoy.config.listener.v3 import Listener
from envoy_data_plane.envoy.config.route.v3 import RouteConfiguration, VirtualHost

from control_plane.domain.policy import Policy
from control_plane.domain.session import Session
from control_plane.envoy_contract import session_resource_name
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.cluster import render_egress_cluster
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.builders.route import render_ended_routes, render_session_routes
from control_plane.xds.builders.shared import (
    DESTINATIONS_FILTER,
    UNWRAP_TOKEN_FILTER,
    render_destinations_filter,
    render_unwrap_token_filter,
)
from control_plane.xds.resource import Resource, VirtualHostCache, build, build_routes
from control_plane.xds.types import FILTER_CONFIG, ROUTE, register_message_types

_VIRTUAL_HOSTS = VirtualHostCache()


def egress_cluster(settings: EgressSettings) -> Resource:
    register_message_types()
    return build(Cluster, render_egress_cluster(settings))


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


def session_routes(session: Session, policy: Policy, authz_every_connect: bool = False) -> Resource:
    register_message_types()
    rules = policy.effective(session.egress)
    config = render_session_routes(session.id, rules, policy.deny, session.report_only, authz_every_connect)
    return build_routes(config, VirtualHost, _VIRTUAL_HOSTS)


def ended_routes(session: Session) -> Resource:
    register_message_types()
    return build(RouteConfiguration, render_ended_routes(session.id))
