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

from control_plane.credentials.secret import Injection
from control_plane.domain.paths import path_regex
from control_plane.domain.rules import SANDBOX_API_HOST, EgressRule
from control_plane.envoy_contract import (
    APPROVAL_DENIED,
    APPROVAL_TIMEOUT,
    ASK_ROUTE,
    CREDENTIAL_HOST_MISMATCH,
    DENY_HEADER,
    HOST_NOT_ALLOWED,
    METHOD_NOT_ALLOWED,
    PATH_NOT_ALLOWED,
    POLICY_DENIED,
    RULE_EXTENSION,
    SESSION_ENDED,
    SESSION_ID_EXTENSION,
    TUNNEL_NOT_INSPECTABLE,
    UNLISTED,
    WOULD_DENY_HEADER,
    allow_route,
    deny_route,
    inspect_name,
    session_resource_name,
)
from control_plane.xds.builders import EGRESS_CLUSTER, SANDBOX_API_CLUSTER, SANDBOX_API_MAX_BODY_BYTES, TYPE
from control_plane.xds.builders.listener import BUFFER_FILTER, EXT_AUTHZ_FILTER

SESSION_HEADER = "x-sandgate-session-id"  # set by the route, over anything the sandbox sent
_APPROVAL_OUTCOMES = {
    APPROVAL_DENIED: "an operator denied the request for approval",
    APPROVAL_TIMEOUT: "no operator decided on the request for approval in time",
}
Refusal = Callable[[str, dict[str, Any], str], dict[str, Any]]
_AUTHZ_PER_ROUTE = TYPE + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
_FILTER_CONFIG = TYPE + "envoy.config.route.v3.FilterConfig"
_BUFFER_PER_ROUTE = TYPE + "envoy.extensions.filters.http.buffer.v3.BufferPerRoute"


def deny_body(session_id: str, reason: str) -> str:
    if reason == SESSION_ENDED:
        return f"Sandgate: session {session_id} has ended; its sandbox can reach nothing.\n"
    if reason in _APPROVAL_OUTCOMES:
        return (
            f"Sandgate denied this request ({reason}): no rule of session {session_id} covers this destination, "
            f"and {_APPROVAL_OUTCOMES[reason]}.\nAn operator can allow it with: sandgate egress add {session_id} "
            "HOST[:PORT]\n"
        )
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
    ask: bool = False,
    sandbox_api: bool = False,
    injections: tuple[Injection, ...] = (),
) -> dict[str, Any]:
    """`rules` must already exclude `denied_hosts` (see Policy.effective).

    In report mode what the allowlist would deny is forwarded and named `would-deny:<reason>`; the
    global policy's denials stay in force. With `ask` (on_unlisted ASK), what no rule covers is held by
    the control plane's ext_authz until an operator decides (report mode forwards it instead). With
    `sandbox_api`, http://sandgate.internal reaches the control plane's server for sandboxes. A request
    to an allowed host that carries one of `injections`' placeholders is refused (credential-host-mismatch).
    """
    refuse = _would_deny_route if report_only else refuse_route
    allowed = [_allow_vhost(session_id, i, rule, refuse, authz_every_connect) for i, rule in enumerate(rules)]
    guards = placeholder_routes(session_id, injections)
    for vhost in allowed:
        vhost["routes"][:0] = guards
    ports = sorted({80, 443, *(p for r in rules for p in r.ports)})
    denied = [_policy_deny_vhost(session_id, i, host, ports) for i, host in enumerate(denied_hosts)]
    internal = [_sandbox_api_vhost(session_id, sandbox_api), _sandbox_api_other_ports_vhost(session_id)]
    fallback = deny_vhost(session_id, refuse=_ask_route if ask and not report_only else refuse)
    if ask or report_only:  # the catch-all forwards: a placeholder is refused there too
        fallback["routes"][:0] = guards
    # On a port no rule names, a denied host reaches the catch-all: the global deny list must hold there
    # too, in report mode above all (where the catch-all forwards).
    fallback["routes"][:0] = _policy_deny_routes(session_id, denied_hosts)
    return {
        "name": session_resource_name(session_id),
        "virtual_hosts": [*allowed, *denied, *internal, fallback],
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
        "name": allow_route(rule.host),
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
        extensions = {SESSION_ID_EXTENSION: session_id, RULE_EXTENSION: rule.host}
        check = {"check_settings": {"context_extensions": extensions}}
        connect["typed_per_filter_config"] = {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, **check}}
    plain = {"cluster": EGRESS_CLUSTER, "timeout": "0s"}
    # A tunnel is opaque: a rule that limits methods or paths cannot be enforced inside one, so it is
    # refused rather than let a POST through where only GET is allowed (unless inspected: see inspect.py).
    opaque_limits = rule.limits_requests and not rule.inspect
    routes = [refuse(session_id, {"connect_matcher": {}}, TUNNEL_NOT_INSPECTABLE) if opaque_limits else connect]
    routes += request_routes(session_id, rule, plain, refuse)
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
        "name": allow_route(host),
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
            routes.append(refuse_route(session_id, match, CREDENTIAL_HOST_MISMATCH))
    return routes


def request_routes(session_id: str, rule: EgressRule, action: dict[str, Any], refuse: Refusal) -> list[dict[str, Any]]:
    """A rule's routes for plain requests (or inspected ones): `action` for an allowed method on an allowed
    path, then a refusal naming what was wrong (the method before the path)."""
    allowed_path: dict[str, Any] = {"safe_regex": {"regex": path_regex(rule.paths)}} if rule.paths else {"prefix": "/"}
    methods = [{"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(rule.methods)}}}]
    match = {**allowed_path, "headers": methods} if rule.methods else allowed_path
    routes = [{"name": allow_route(rule.host), "match": match, "route": action}]
    if rule.methods:
        routes.append(refuse(session_id, allowed_path, METHOD_NOT_ALLOWED))
    if rule.paths:
        routes.append(refuse(session_id, {"prefix": "/"}, PATH_NOT_ALLOWED))
    return routes


def _policy_deny_vhost(session_id: str, index: int, host: str, ports: list[int]) -> dict[str, Any]:
    """A denied name is matched before any wildcard rule that would cover it: Envoy prefers longer suffixes."""
    return deny_vhost(session_id, f"policy-deny-{index}-{host}", [host, *(f"{host}:{p}" for p in ports)], POLICY_DENIED)


def _policy_deny_routes(session_id: str, denied_hosts: tuple[str, ...]) -> list[dict[str, Any]]:
    if not denied_hosts:
        return []
    authority = {"name": ":authority", "string_match": {"safe_regex": {"regex": authority_regex(denied_hosts)}}}
    matches: list[dict[str, Any]] = [{"connect_matcher": {}}, {"prefix": "/"}]
    return [refuse_route(session_id, {**match, "headers": [authority]}, POLICY_DENIED) for match in matches]


def authority_regex(hosts: tuple[str, ...]) -> str:
    """An RE2 matching `host[.][:port]` for exact hosts, and any subdomain for `*.` wildcards (not the apex)."""
    alternatives = [r"[^:/\[\]]+\." + re.escape(h[2:]) if h.startswith("*.") else re.escape(h) for h in hosts]
    return "(?i)(" + "|".join(alternatives) + r")\.?(:[0-9]+)?"


def deny_vhost(
    session_id: str,
    name: str = "deny",
    domains: list[str] | None = None,
    reason: str = HOST_NOT_ALLOWED,
    refuse: Refusal | None = None,
) -> dict[str, Any]:
    refuse = refuse or refuse_route
    return {
        "name": name,
        "domains": domains or ["*"],
        "routes": [
            refuse(session_id, {"connect_matcher": {}}, reason),
            refuse(session_id, {"prefix": "/"}, reason),
        ],
        "typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, "disabled": True}},
    }


def refuse_route(session_id: str, match: dict[str, Any], reason: str) -> dict[str, Any]:
    """A 403 for `reason`, with DENY_HEADER and the route named `deny:<reason>`."""
    return {
        "name": deny_route(reason),
        "match": match,
        "direct_response": {"status": 403, "body": {"inline_string": deny_body(session_id, reason)}},
        "response_headers_to_add": [
            {"header": {"key": DENY_HEADER, "value": reason}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
    }


def _ask_route(session_id: str, match: dict[str, Any], reason: str) -> dict[str, Any]:
    """Forwarded only if the control plane's ext_authz allows it: it holds the request on an approval.

    ext_authz fails closed, so with the control plane down such a request is refused."""
    action: dict[str, Any] = {"cluster": EGRESS_CLUSTER, "timeout": "0s"}
    if "connect_matcher" in match:
        action["upgrade_configs"] = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    check = {"context_extensions": {"session_id": session_id, "unlisted": UNLISTED}}
    return {
        "name": f"{ASK_ROUTE}{reason}",
        "match": match,
        "route": action,
        "typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, "check_settings": check}},
    }


def _sandbox_api_vhost(session_id: str, served: bool) -> dict[str, Any]:
    """http://sandgate.internal/ to the control plane's server for sandboxes, naming the session; refused
    when it is not `served` (never held on an approval, never resolved by DNS).

    Only a request whose token jwt_authn verified for this session's listener gets here, and the route
    sets the session header itself (overwriting one the sandbox sent), so a sandbox cannot speak for another.
    Envoy buffers each request whole before it opens an upstream request: the API's cluster is shared by every
    session, and a request whose body never comes must hold only its own session's connection.
    """
    whole = {"buffer": {"max_request_bytes": SANDBOX_API_MAX_BODY_BYTES}}
    api: dict[str, Any] = {
        "name": allow_route(SANDBOX_API_HOST),
        "match": {"prefix": "/"},
        "route": {"cluster": SANDBOX_API_CLUSTER, "timeout": "10s"},
        "request_headers_to_add": [
            {"header": {"key": SESSION_HEADER, "value": session_id}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
        "typed_per_filter_config": {
            BUFFER_FILTER: {"@type": _FILTER_CONFIG, "config": {"@type": _BUFFER_PER_ROUTE, **whole}}
        },
    }
    return {
        "name": "sandgate-internal",
        "domains": [SANDBOX_API_HOST, f"{SANDBOX_API_HOST}:80"],
        "routes": [
            refuse_route(session_id, {"connect_matcher": {}}, "host-not-allowed"),
            api if served else refuse_route(session_id, {"prefix": "/"}, "host-not-allowed"),
        ],
        "typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": _AUTHZ_PER_ROUTE, "disabled": True}},
    }


def _sandbox_api_other_ports_vhost(session_id: str) -> dict[str, Any]:
    """`sandgate.internal` on any other port (CONNECT to :443 among them) is refused too: the catch-all would
    hold it on an approval (ASK) or forward it (report mode), and Envoy would look Sandgate's own name up in DNS."""
    return deny_vhost(session_id, "sandgate-internal-other-ports", [f"{SANDBOX_API_HOST}:*"])


def _would_deny_route(session_id: str, match: dict[str, Any], reason: str) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": EGRESS_CLUSTER, "timeout": "0s"}
    if "connect_matcher" in match:
        action["upgrade_configs"] = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    return {
        "name": deny_route(reason, report_only=True),
        "match": match,
        "route": action,
        "response_headers_to_add": [
            {"header": {"key": WOULD_DENY_HEADER, "value": reason}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ],
    }
