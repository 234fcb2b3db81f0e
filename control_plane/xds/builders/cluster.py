"""The egress cluster: Envoy's dynamic forward proxy, resolving each request's destination."""

from __future__ import annotations

from typing import Any

from control_plane.xds.builders import EGRESS_CLUSTER, TYPE, EgressSettings, dns_cache_config
from control_plane.xds.builders.limits import circuit_breakers


def render_egress_cluster(settings: EgressSettings) -> dict[str, Any]:
    return {
        "name": EGRESS_CLUSTER,
        "connect_timeout": f"{settings.connect_timeout_s}s",
        "lb_policy": "CLUSTER_PROVIDED",
        "circuit_breakers": circuit_breakers(settings.limits),
        "per_connection_buffer_limit_bytes": settings.limits.buffer_bytes,
        "cluster_type": {
            "name": "envoy.clusters.dynamic_forward_proxy",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                "dns_cache_config": dns_cache_config(settings),
            },
        },
    }
