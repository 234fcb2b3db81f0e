"""HTTPS inspection: what Envoy needs to decrypt an inspected host's tunnel and decide each request inside.

    session listener: CONNECT api.example.test:443 (an inspected rule)
      -> route to cluster `inspect-<session>`, CONNECT terminated there (connect_config): the tunnel's bytes
      -> internal listener `inspect-<session>` (envoy.bootstrap.internal_listener, no socket anywhere)
         filter chain picked by SNI: TLS ended with a leaf for that name (SDS), signed by the session's CA
      -> HTTP connection manager, routes `inspect-<session>`: the rule's methods and paths, its credential
      -> cluster `sandgate_egress_tls`: the dynamic forward proxy again (forbidden addresses checked), with
         upstream TLS always verified: the trust store, SNI and the certificate's names from the Host.

A tunnel to any host that is not inspected never reaches any of this: its bytes go to the upstream untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from control_plane.audit.entries import CREDENTIAL_MARK
from control_plane.credentials.secret import Injection
from control_plane.domain.rules import EgressRule
from control_plane.xds.builders import EGRESS_TLS_CLUSTER, TYPE, EgressSettings, inspect_name
from control_plane.xds.builders.cluster import render_egress_cluster
from control_plane.xds.builders.listener import inner_connection_manager
from control_plane.xds.builders.route import deny_route, deny_vhost, domains_for, placeholder_routes, request_routes

_TLS_SOCKET = "envoy.transport_sockets.tls"
_UPSTREAM_TLS = TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
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
        action = {"cluster": EGRESS_TLS_CLUSTER, "timeout": "0s"}
        routes = request_routes(session_id, rule, action, deny_route)
        own = credentials.get(rule.credential)
        if own is not None:
            routes[0]["name"] += CREDENTIAL_MARK + rule.credential  # the decision names the secret, never its value
            header = {"header": {"key": own.header, "value": own.value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            routes[0]["request_headers_to_add"] = [header]
        others = [c for name, c in sorted(credentials.items()) if name != rule.credential]
        routes[:0] = placeholder_routes(session_id, others)
        vhosts.append({"name": f"inspect-{index}-{rule.host}", "domains": domains_for(rule), "routes": routes})
    fallback = deny_vhost(session_id)
    fallback.pop("typed_per_filter_config")
    return {
        "name": inspect_name(session_id),
        "virtual_hosts": [*vhosts, fallback],
        "request_headers_to_remove": ["x-forwarded-proto"],
    }


def render_egress_tls_cluster(settings: EgressSettings, trusted_ca: str) -> dict[str, Any]:
    """The egress cluster again, for inspected requests: upstream TLS verified against `trusted_ca` (PEM: the
    system's CAs and the configured extra ones), SNI and the certificate's names taken from the request's Host.
    Nothing turns the verification off."""
    cluster = copy.deepcopy(render_egress_cluster(settings))
    cluster["name"] = EGRESS_TLS_CLUSTER
    proxy = cluster["cluster_type"]["typed_config"]
    proxy.pop("allow_insecure_cluster_options")
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    options["upstream_http_protocol_options"] = {"auto_sni": True, "auto_san_validation": True}
    cluster["transport_socket"] = {
        "name": _TLS_SOCKET,
        "typed_config": {
            "@type": _UPSTREAM_TLS,
            "common_tls_context": {
                "validation_context": {"trusted_ca": {"inline_string": trusted_ca}},
                "alpn_protocols": ["http/1.1"],
            },
        },
    }
    return cluster
