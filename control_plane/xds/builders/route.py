"""A session's routes: one virtual host per allowed destination, and a default that denies.

Every virtual host has a CONNECT route as well as a prefix route, or CONNECT would escape the check
(or get a 404). Envoy decides allowed traffic alone: the control plane's ext_authz is consulted on
CONNECT only when the operator asks for it (`authz_every_connect`), so a control-plane outage does not
stop a live session from reaching what it may reach.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from control_plane.audit.entries import ALLOW_ROUTE, DENY_ROUTE, WOULD_DENY_ROUTE
from control_plane.credentials.secret import Injection
from control_plane.domain.paths import path_regex
from control_plane.domain.rules import EgressRule
from control_plane.xds.builders import EGRESS_CLUSTER, TYPE, inspect_name, session_resource_name
from control_plane.xds.builders.listener import EXT_AUTHZ_FILTER
from control_plane.xds.builders.local_reply import DENY_HEADER

POLICY_DENIED = "destination-denied-by-policy"
NOT_INSPECTABLE = "tunnel-not-inspectable"
CREDENTIAL_MISMATCH = "credential-host-mismatch"
SESSION_ENDED = "session-ended"
WOULD_DENY_HEADER = "x-sandgate-would-deny"
Refusal = Callable[[str, dict[str, Any], str], dict[str, Any]]
_AUTHZ_PER_ROUTE = TYPE + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"


def deny_body(session_id: str, reason: str) -> str:
    if reason == SESSION_ENDED:
        return f"Sandgate: session {session_id} has ended; its sandbox can reach nothing.\n"
    if reason == POLICY_DENIED:
        return (
            f"Sandgate denied this request ({reason}): the global egress policy denies this destination for every "
            "session.\nAn operator can change the global policy with: PUT /v1/policy on the admin API\n"
        )
    return (
        f"Sandgate denied this request ({reason}): the destination is not allowed by the egress policy "
        f"of session {session_id}.\nAn operator can allow it with: sandgate egress add {session_id} HOST[:PORT]\n"
    )


def render_session_routes(
    session_id: str,
    rules: tuple[EgressRule, ...],
    denied_hosts: tuple[str, ...] = (),
    report_only: bool = False,
    authz_every_connect: bool = False,
    injections: tuple[Injection, ...] = (),
) -> dict[str, Any]:
    """`rules` must already exclude `denied_hosts` (see Policy.effective).

    In report mode what the allowlist would deny is forwarded and named `would-deny:<reason>`; the
    global policy's denials stay in force.
    """
    refuse = _would_deny_route if report_only else deny_route
    allowed = [_allow_vhost(session_id, i, rule, refuse, authz_every_connect) for i, rule in enumerate(rules)]
    guards = placeholder_routes(session_id, injections)
    for vhost in allowed:
        vhost["routes"][:0] = guards
    ports = sorted({80, 443, *(p for r in rules for p in r.ports)})
    denied = [_policy_deny_vhost(session_id, i, host, ports) for i, host in enumerate(denied_hosts)]
    fallback = deny_vhost(session_id, refuse=refuse)
    # On a port no rule names, a denied host reaches the catch-all: the global deny list must hold there
    # too, in report mode above all (where the catch-all forwards).
    fallback["routes"][:0] = _policy_deny_routes(session_id, denied_hosts)
    return {
        "name": session_resource_name(session_id),
        "virtual_hosts": [*allowed, *denied, fallback],
        # Envoy's connection manager adds it; a transparent proxy forwards what the client sent.
        "request_headers_to_remove": ["x-forwarded-proto"],
    }


def render_ended_routes(session_id: str) -> dict[str, Any]:
    """What a session's listener serves between its end and its removal: nothing."""
    return {"name": session_resource_name(session_id), "virtual_hosts": [deny_vhost(session_id, reason=SESSION_ENDED)]}


def domains_for(rule: EgressRule) -> list[str]:
    """Envoy matches `host` or `host:port` against these; a bare host means port 80. IP and CIDR rules
    list each address, IPv6 ones in brackets as they appear in a request."""
    hosts = [f"[{a}]" if ":" in a else a for a in rule.addresses()] or [rule.host]
    domains = []
    for host in hosts:
        for port in rule.ports:
            if port == 80:
                domains.append(host)
            domains.append(f"{host}:{port}")
    return domains


def _allow_vhost(session_id: str, index: int, rule: EgressRule, refuse: Refusal, authz: bool) -> dict[str, Any]:
    connect: dict[str, Any] = {
        "name": f"{ALLOW_ROUTE}{rule.host}",
        "match": {"connect_matcher": {}},
        "route": {
            "cluster": EGRESS_CLUSTER,
            "timeout": "0s",
            "upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}],
        },
    }
    if rule.inspect:
        connect = inspected_connect_route(rule.host, inspect_name(session_id))
    if authz:
        check = {"check_settings": {"context_extensions": {"session_id": session_id, "rule": rule.host}}}
        connect["typed_per_filter_config"] = {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, **check}}
    plain = {"route": {"cluster": EGRESS_CLUSTER, "timeout": "0s"}}
    # A tunnel is opaque: a rule that limits methods or paths cannot be enforced inside one, so it is
    # refused rather than let a POST through where only GET is allowed (unless inspected: see inspect.py).
    routes = [refuse(session_id, {"connect_matcher": {}}, NOT_INSPECTABLE) if _opaque_limits(rule) else connect]
    routes += request_routes(session_id, rule, plain["route"], refuse)
    return {
        "name": f"allow-{index}-{rule.host.replace('/', '_')}",
        "domains": domains_for(rule),
        "routes": routes,
        "typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, "disabled": True}},
    }


def inspected_connect_route(host: str, cluster: str) -> dict[str, Any]:
    """Envoy answers the CONNECT itself (200) and sends the tunnel's bytes to the session's internal listener,
    which decrypts them (builders/inspect.py)."""
    return {
        "name": f"{ALLOW_ROUTE}{host}",
        "match": {"connect_matcher": {}},
        "route": {
            "cluster": cluster,
            "timeout": "0s",
            "upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}],
        },
    }


def placeholder_routes(session_id: str, injections: Iterable[Injection]) -> list[dict[str, Any]]:
    """Refusals of a request that carries a secret's placeholder (in the secret's header, or in the path or
    query) anywhere but on the host that secret is bound to: a placeholder is not to be sent elsewhere."""
    routes = []
    for injection in injections:
        for header in (injection.header, ":path"):
            match = {"prefix": "/", "headers": [{"name": header, "string_match": {"contains": injection.placeholder}}]}
            routes.append(deny_route(session_id, match, CREDENTIAL_MISMATCH))
    return routes


def _opaque_limits(rule: EgressRule) -> bool:
    return rule.limits_requests and not rule.inspect


def request_routes(session_id: str, rule: EgressRule, action: dict[str, Any], refuse: Refusal) -> list[dict[str, Any]]:
    """A rule's routes for plain requests (or inspected ones): `action` for an allowed method on an allowed
    path, then a refusal naming what was wrong (the method before the path)."""
    allowed_path: dict[str, Any] = {"safe_regex": {"regex": path_regex(rule.paths)}} if rule.paths else {"prefix": "/"}
    methods = [{"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(rule.methods)}}}]
    match = {**allowed_path, "headers": methods} if rule.methods else allowed_path
    allow = {"name": f"{ALLOW_ROUTE}{rule.host}", "match": match, "route": action}
    routes = [allow]
    if rule.methods:
        routes.append(refuse(session_id, allowed_path, "method-not-allowed"))
    if rule.paths:
        routes.append(refuse(session_id, {"prefix": "/"}, "path-not-allowed"))
    return routes


def _policy_deny_vhost(session_id: str, index: int, host: str, ports: list[int]) -> dict[str, Any]:
    """A denied name is matched before any wildcard rule that would cover it: Envoy prefers longer suffixes."""
    return deny_vhost(session_id, f"policy-deny-{index}-{host}", [host, *(f"{host}:{p}" for p in ports)], POLICY_DENIED)


def _policy_deny_routes(session_id: str, denied_hosts: tuple[str, ...]) -> list[dict[str, Any]]:
    if not denied_hosts:
        return []
    authority = {"name": ":authority", "string_match": {"safe_regex": {"regex": authority_regex(denied_hosts)}}}
    matches: list[dict[str, Any]] = [{"connect_matcher": {}}, {"prefix": "/"}]
    return [deny_route(session_id, {**match, "headers": [authority]}, POLICY_DENIED) for match in matches]


def authority_regex(hosts: tuple[str, ...]) -> str:
    """An RE2 matching `host[.][:port]` for exact hosts, and any subdomain for `*.` wildcards (not the apex)."""
    alternatives = [r"[^:/\[\]]+\." + re.escape(h[2:]) if h.startswith("*.") else re.escape(h) for h in hosts]
    return "(?i)(" + "|".join(alternatives) + r")\.?(:[0-9]+)?"


def deny_vhost(
    session_id: str,
    name: str = "deny",
    domains: list[str] | None = None,
    reason: str = "host-not-allowed",
    refuse: Refusal | None = None,
) -> dict[str, Any]:
    refuse = refuse or deny_route
    return {
        "name": name,
        "domains": domains or ["*"],
        "routes": [
            refuse(session_id, {"connect_matcher": {}}, reason),
            refuse(session_id, {"prefix": "/"}, reason),
        ],
        "typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, "disabled": True}},
    }


def deny_route(session_id: str, match: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "name": f"{DENY_ROUTE}{reason}",
        "match": match,
        "direct_response": {"status": 403, "body": {"inline_string": deny_body(session_id, reason)}},
        "response_headers_to_add": [
            {"header": {"key": DENY_HEADER, "value": reason}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
    }


def _would_deny_route(session_id: str, match: dict[str, Any], reason: str) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": EGRESS_CLUSTER, "timeout": "0s"}
    if "connect_matcher" in match:
        action["upgrade_configs"] = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    return {
        "name": f"{WOULD_DENY_ROUTE}{reason}",
        "match": match,
        "route": action,
        "response_headers_to_add": [
            {"header": {"key": WOULD_DENY_HEADER, "value": reason}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
    }
