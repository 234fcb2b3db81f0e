"""HTTPS inspection: what Envoy needs to decrypt an inspected host's tunnel and decide each request inside.

    session listener: CONNECT api.example.test:443 (an inspected rule)
      -> route to cluster `inspect-<session>`, CONNECT terminated there (connect_config): the tunnel's bytes
      -> internal listener `inspect-<session>` (envoy.bootstrap.internal_listener, no socket anywhere)
         filter chain picked by SNI: TLS ended with a leaf for that name (SDS), signed by the session's CA
      -> HTTP connection manager, routes `inspect-<session>`: the rule's methods and paths, its credential
      -> cluster `inspect-session-<session>-<host>-<port>`: STRICT_DNS (forbidden addresses checked), with
         upstream TLS always verified: the trust store, SNI and the certificate's names.

A tunnel to any host that is not inspected never reaches any of this: its bytes go to the upstream untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control_plane.credentials.secret import Injection
from control_plane.domain.rules import EgressRule
from control_plane.envoy_contract import CREDENTIAL_MARK, inspect_name
from control_plane.xds.builders import TYPE, EgressSettings
from control_plane.xds.builders.cluster import render_egress_cluster
from control_plane.xds.builders.listener import inner_connection_manager
from control_plane.xds.builders.route import deny_vhost, placeholder_routes, refuse_route, request_routes

_TLS_SOCKET = "envoy.transport_sockets.tls"
_UPSTREAM_TLS = TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_ADS = {"ads": {}, "resource_api_version": "V3"}
UPSTREAM_TRUST = "sandgate-upstream-trust"
_DOWNSTREAM_TLS = TYPE + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


def leaf_secret_name(session_id: str, host: str) -> str:
    return f"leaf-{session_id}-{host}"


def render_inspect_cluster(session_id: str) -> dict[str, Any]:
    name = inspect_name(session_id)
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"envoy_internal_address": {
                "server_listener_name": name}}}}]}],
        },
    }  # fmt: skip


def render_inspect_listener(session_id: str, hosts: tuple[str, ...], settings: EgressSettings) -> dict[str, Any]:
    """One filter chain per inspected name (by SNI); a ClientHello for any other name matches none and is closed."""
    name = inspect_name(session_id)
    manager = inner_connection_manager(name, settings)
    return {
        "name": name,
        "internal_listener": {},
        "stat_prefix": "inspected",
        "per_connection_buffer_limit_bytes": settings.limits.buffer_bytes,
        "listener_filters": [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {"@type": TYPE + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
            }
        ],
        "filter_chains": [_filter_chain(session_id, host, manager) for host in hosts],
    }


def _filter_chain(session_id: str, host: str, manager: dict[str, Any]) -> dict[str, Any]:
    tls = {
        "@type": _DOWNSTREAM_TLS,
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [
                {"name": leaf_secret_name(session_id, host), "sds_config": {"ads": {}, "resource_api_version": "V3"}}
            ],
            # HTTP/1.1 inside, as on the session listener: one request at a time per connection.
            "alpn_protocols": ["http/1.1"],
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
        },
    }
    return {
        "name": host,
        "filter_chain_match": {"server_names": [host]},
        "transport_socket": {"name": _TLS_SOCKET, "typed_config": tls},
        "filters": [manager],
    }


def render_leaf_secret(session_id: str, host: str, chain_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    return {
        "name": leaf_secret_name(session_id, host),
        "tls_certificate": {
            "certificate_chain": {"inline_string": chain_pem.decode()},
            "private_key": {"inline_string": key_pem.decode()},
        },
    }


def render_inspect_routes(
    session_id: str, rules: tuple[EgressRule, ...], credentials: Mapping[str, Injection]
) -> dict[str, Any]:
    """Routes of the decrypted requests: a virtual host per inspected rule (its methods, paths and credential,
    `credentials` giving each of the session's secrets), and a default that denies any other Host.

    A rule's credential replaces whatever the sandbox sent in that header (its placeholder, say); the other
    secrets' placeholders are refused there, as on every other host."""
    vhosts = []
    for index, rule in enumerate(r for r in rules if r.inspect):
        for port in rule.ports:
            action = {"cluster": upstream_cluster_name(session_id, rule.host, port), "timeout": "0s"}
            routes = request_routes(session_id, rule, action, refuse_route)
            own = credentials.get(rule.credential)
            if own is not None:
                routes[0]["name"] += CREDENTIAL_MARK + rule.credential  # the decision names it, never its value
                header = {"key": own.header, "value": own.value}
                routes[0]["request_headers_to_add"] = [
                    {"header": header, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                ]
            others = [c for name, c in sorted(credentials.items()) if name != rule.credential]
            routes[:0] = placeholder_routes(session_id, others)
            domains = [f"{rule.host}:{port}", *([rule.host] if port == 443 else [])]
            vhosts.append({"name": f"inspect-{index}-{rule.host}-{port}", "domains": domains, "routes": routes})
    fallback = deny_vhost(session_id)
    fallback.pop("typed_per_filter_config")
    return {
        "name": inspect_name(session_id),
        "virtual_hosts": [*vhosts, fallback],
        "request_headers_to_remove": ["x-forwarded-proto"],
    }


def upstream_cluster_name(session_id: str, host: str, port: int) -> str:
    return f"{inspect_name(session_id)}-{host}-{port}"


def render_upstream_cluster(session_id: str, host: str, port: int, settings: EgressSettings) -> dict[str, Any]:
    """Where an inspected host's decrypted requests go: its own STRICT_DNS cluster (one upstream host per
    address, each checked by the forbidden-destinations filter, as the egress cluster's sub-clusters are),
    with upstream TLS always verified: the trust store (SDS `UPSTREAM_TRUST`: the system's CAs and the
    configured extra ones), SNI `host`, and `host` among the certificate's names. Nothing turns that off.

    Not the dynamic forward proxy: its sub-clusters are named by host:port alone, so an inspected host's
    TLS sub-cluster and another session's opaque tunnel to the same host:port would be one and the same."""
    name = upstream_cluster_name(session_id, host, port)
    egress = render_egress_cluster(settings)
    tls = {
        "@type": _UPSTREAM_TLS,
        "sni": host,
        "common_tls_context": {
            "alpn_protocols": ["http/1.1"],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}]
                },
                "validation_context_sds_secret_config": {"name": UPSTREAM_TRUST, "sds_config": _ADS},
            },
        },
    }
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": egress["connect_timeout"],
        "dns_lookup_family": settings.dns_lookup_family,
        "lb_policy": "ROUND_ROBIN",
        "circuit_breakers": egress["circuit_breakers"],
        "per_connection_buffer_limit_bytes": egress["per_connection_buffer_limit_bytes"],
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": host, "port_value": port}}}}]}]},
        "typed_extension_protocol_options": egress["typed_extension_protocol_options"],
        "transport_socket": {"name": _TLS_SOCKET, "typed_config": tls},
    }  # fmt: skip
    if "typed_dns_resolver_config" in egress:
        cluster["typed_dns_resolver_config"] = egress["typed_dns_resolver_config"]
    return cluster


def render_upstream_trust(trusted_ca: str) -> dict[str, Any]:
    """The one trust store of every inspected upstream (an SDS secret: sent once, not once per cluster)."""
    return {"name": UPSTREAM_TRUST, "validation_context": {"trusted_ca": {"inline_string": trusted_ca}}}
