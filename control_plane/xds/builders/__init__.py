"""One builder per Envoy resource kind. Each returns a proto3-JSON mapping; `xds.resource.build` types it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from control_plane.xds.builders.limits import TenantLimits

CONTROL_PLANE_CLUSTER = "sandgate_control_plane"
EGRESS_CLUSTER = "sandgate_egress"
SANDBOX_API_CLUSTER = "sandgate_sandbox_api"  # the control plane's HTTP server for sandboxes (approvals/)
DNS_CACHE_NAME = "sandgate_dns"
TYPE = "type.googleapis.com/"


@dataclass(frozen=True)
class EgressSettings:
    """What every session's Envoy config shares."""

    dns_resolvers: tuple[tuple[str, int], ...] = ()  # empty: the host's resolver
    dns_lookup_family: str = "V4_PREFERRED"
    connect_timeout_s: float = 5.0
    idle_timeout_s: int = 300  # a downstream connection with no request or tunnel open
    stream_idle_timeout_s: int = 3600  # a request or tunnel with no bytes either way; 0: none
    forbidden_cidrs: tuple[str, ...] = ()  # checked after DNS, on every request and tunnel
    forbidden_exceptions: tuple[str, ...] = ()
    authz_every_connect: bool = False  # ask the control plane's ext_authz on every CONNECT as well
    max_destinations: int = 8192  # distinct host:port destinations Envoy keeps resolved at once, for all sessions
    limits: TenantLimits = field(default_factory=TenantLimits)
    sandbox_api_socket: str = ""  # the control plane's unix socket for http://sandgate.internal; "": none
    approval_timeout_s: int = 30  # how long an ASK session's request to an unlisted destination may wait


def dns_resolver_config(settings: EgressSettings) -> dict[str, Any] | None:
    """The configured resolvers as Envoy's c-ares resolver config; None means the host's resolver."""
    if not settings.dns_resolvers:
        return None
    return {
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
            "resolvers": [{"socket_address": {"address": a, "port_value": p}} for a, p in settings.dns_resolvers],
            "use_resolvers_as_fallback": False,
            "dns_resolver_options": {"no_default_search_domain": True},
        },
    }


def dns_cache_config(settings: EgressSettings) -> dict[str, Any]:
    """A dynamic forward proxy DNS cache on the same resolvers: the benchmarks' no-policy baseline uses it."""
    config: dict[str, Any] = {"name": DNS_CACHE_NAME, "dns_lookup_family": settings.dns_lookup_family}
    resolver = dns_resolver_config(settings)
    if resolver:
        config["typed_dns_resolver_config"] = resolver
    return config
