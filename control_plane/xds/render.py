"""Sessions to xDS resources. Each resource is serialized once and versioned by its content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control_plane.domain.policy import Policy
from control_plane.domain.session import OnUnlisted, Session
from control_plane.envoy_contract import session_resource_name
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.cluster import render_egress_cluster, render_sandbox_api_cluster
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.builders.route import render_ended_routes, render_session_routes
from control_plane.xds.builders.shared import (
    DESTINATIONS_FILTER,
    UNWRAP_TOKEN_FILTER,
    render_destinations_filter,
    render_unwrap_token_filter,
)
from control_plane.xds.resource import Resource, build, build_routes
from control_plane.xds.types import CLUSTER, FILTER_CONFIG, LISTENER, ROUTE


def egress_cluster(settings: EgressSettings) -> Resource:
    return build(CLUSTER, render_egress_cluster(settings))


def clusters(settings: EgressSettings) -> list[Resource]:
    """The egress cluster, and the sandbox API's if the control plane serves one."""
    found = [egress_cluster(settings)]
    if settings.sandbox_api_socket:
        found.append(build(CLUSTER, render_sandbox_api_cluster(settings.sandbox_api_socket)))
    return found


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
    session: Session, policy: Policy, authz_every_connect: bool = False, sandbox_api: bool = False
) -> Resource:
    rules = policy.effective(session.egress)
    ask = session.on_unlisted == OnUnlisted.ASK
    config = render_session_routes(
        session.id, rules, policy.deny, session.report_only, authz_every_connect, ask, sandbox_api
    )
    return build_routes(config)


def ended_routes(session: Session) -> Resource:
    return build(ROUTE, render_ended_routes(session.id))
