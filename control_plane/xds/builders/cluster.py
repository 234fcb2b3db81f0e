"""The egress cluster: Envoy's dynamic forward proxy, with the forbidden-address check on the host it connects to.

Each destination `host:port` becomes a sub-cluster of type STRICT_DNS: one upstream host per address in the
DNS answer, each with exactly one address. The `upstream_rbac` filter checks the host the load balancer picked,
after DNS and before the connection is made, so the address that is checked is the address that is connected:
a second record in the answer, a happy-eyeballs fallback, a connection queued in a pool or a re-resolution
cannot reach an address that was not checked. (The DFP's own DNS cache keeps one logical host with every
address of the answer and connects to any of them; only the first would have been checked.)
"""

from __future__ import annotations

from typing import Any

from control_plane.xds.builders import (
    EGRESS_CLUSTER,
    SANDBOX_API_CLUSTER,
    TYPE,
    EgressSettings,
    dns_resolver_config,
)
from control_plane.xds.builders.limits import circuit_breakers
from control_plane.xds.builders.shared import DESTINATIONS_FILTER, RBAC_TYPE

# How long an unused destination's sub-cluster (and its resolved addresses) is kept. Each costs Envoy about
# 38 KiB (their stats are off: channel/bootstrap.yaml), so max_destinations bounds that memory.
SUB_CLUSTER_TTL_S = 120


def render_egress_cluster(settings: EgressSettings) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": EGRESS_CLUSTER,
        "connect_timeout": f"{settings.connect_timeout_s}s",
        "lb_policy": "CLUSTER_PROVIDED",
        "circuit_breakers": circuit_breakers(settings.limits),
        "per_connection_buffer_limit_bytes": settings.limits.buffer_bytes,
        "cluster_type": {
            "name": "envoy.clusters.dynamic_forward_proxy",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                "sub_clusters_config": {
                    "lb_policy": "ROUND_ROBIN",
                    "max_sub_clusters": settings.max_destinations,
                    "sub_cluster_ttl": f"{SUB_CLUSTER_TTL_S}s",
                },
                # Upstream TLS is the client's own, inside its tunnel; Envoy speaks plain HTTP or raw TCP.
                "allow_insecure_cluster_options": True,
            },
        },
        # Inherited by every sub-cluster: how destinations are resolved (and re-resolved every 5 s, Envoy's
        # default, while the destination is in use).
        "dns_lookup_family": settings.dns_lookup_family,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": [_forbidden_destinations(), _upstream_codec()],
            }
        },
    }
    resolver = dns_resolver_config(settings)
    if resolver:
        cluster["typed_dns_resolver_config"] = resolver
    return cluster


def _forbidden_destinations() -> dict[str, Any]:
    """The check, by name: its ranges (which change when this host's addresses do) arrive over ECDS."""
    return {
        "name": DESTINATIONS_FILTER,
        "config_discovery": {
            "config_source": {"ads": {}, "resource_api_version": "V3"},
            "type_urls": [RBAC_TYPE],
        },
    }


def _upstream_codec() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.upstream_codec",
        "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"},
    }


def render_sandbox_api_cluster(socket_path: str) -> dict[str, Any]:
    """The control plane's HTTP server for sandboxes (http://sandgate.internal), on a root-only unix socket."""
    endpoint = {"endpoint": {"address": {"pipe": {"path": socket_path}}}}
    return {
        "name": SANDBOX_API_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": SANDBOX_API_CLUSTER, "endpoints": [{"lb_endpoints": [endpoint]}]},
    }
