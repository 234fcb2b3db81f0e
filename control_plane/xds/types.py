"""xDS resource type URLs, and the one place that imports every Envoy message module we pack into Any."""

from __future__ import annotations

import importlib

PREFIX = "type.googleapis.com/"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
FILTER_CONFIG = PREFIX + "envoy.config.core.v3.TypedExtensionConfig"  # ECDS
SECRET = PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"  # SDS: inspection's leaf certificates
VIRTUAL_HOST = PREFIX + "envoy.config.route.v3.VirtualHost"  # not a resource: serialized into routes

# Make-before-break order: clusters and shared filter configs before the listeners that use them,
# listeners before their routes.
PUSH_ORDER = (CLUSTER, FILTER_CONFIG, LISTENER, SECRET, ROUTE)
WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})

_MESSAGE_MODULES = (
    "envoy.config.cluster.v3",
    "envoy.config.core.v3",
    "envoy.config.listener.v3",
    "envoy.config.route.v3",
    "envoy.extensions.access_loggers.file.v3",
    "envoy.extensions.access_loggers.filters.cel.v3",
    "envoy.extensions.access_loggers.grpc.v3",
    "envoy.extensions.clusters.dynamic_forward_proxy.v3",
    "envoy.extensions.filters.http.buffer.v3",
    "envoy.extensions.filters.http.dynamic_forward_proxy.v3",
    "envoy.extensions.filters.http.ext_authz.v3",
    "envoy.extensions.filters.http.jwt_authn.v3",
    "envoy.extensions.filters.http.local_ratelimit.v3",
    "envoy.extensions.filters.http.lua.v3",
    "envoy.extensions.filters.http.rbac.v3",
    "envoy.extensions.filters.http.router.v3",
    "envoy.extensions.filters.http.upstream_codec.v3",
    "envoy.extensions.filters.listener.tls_inspector.v3",
    "envoy.extensions.filters.network.connection_limit.v3",
    "envoy.extensions.filters.network.http_connection_manager.v3",
    "envoy.extensions.network.dns_resolver.cares.v3",
    "envoy.extensions.rbac.matchers.upstream_ip_port.v3",
    "envoy.extensions.transport_sockets.tls.v3",
    "envoy.extensions.upstreams.http.v3",
)


def register_message_types() -> None:
    """Import the generated modules so that `Any` can resolve their type URLs. Idempotent."""
    for name in _MESSAGE_MODULES:
        importlib.import_module("envoy_data_plane." + name)
