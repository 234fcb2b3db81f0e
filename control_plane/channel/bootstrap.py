"""Envoy's bootstrap: the template shipped beside this module (bootstrap.yaml, package data) with this
control plane's node id, admin socket and address.

The control plane writes it at every start into `<state_dir>/envoy/bootstrap.yaml` (0600), for the Envoy it
manages and for an external one alike. Over TCP the bootstrap carries Envoy's client certificate, its key and
the control channel's CA inline, so that one file is all an Envoy on another host needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from control_plane.channel.address import ControlAddress
from control_plane.channel.certs import SERVER_NAME, KeyPair
from control_plane.secrets import write_private
from control_plane.xds.builders import CONTROL_PLANE_CLUSTER

BOOTSTRAP = files("control_plane.channel") / "bootstrap.yaml"  # package data: found in a wheel as in a checkout
ADMIN_SOCKET_MODE = 0o600
HEAP_MONITOR = "envoy.resource_monitors.fixed_heap"
CONNECTIONS_MONITOR = "envoy.resource_monitors.global_downstream_max_connections"


@dataclass(frozen=True)
class EnvoyTls:
    """What Envoy needs to dial a TCP control plane: the channel's CA and its own client certificate."""

    ca_pem: bytes
    client: KeyPair


@dataclass(frozen=True)
class BootstrapOptions:
    node_id: str
    admin_socket: Path
    control_plane: ControlAddress
    api_type: str = "DELTA_GRPC"
    tls: EnvoyTls | None = None  # required when control_plane is TCP
    max_downstream_connections: int = 50_000  # all listeners together (the overload manager's monitor)
    max_heap_bytes: int = 2 << 30  # the overload manager sheds load as the heap nears this

    def __post_init__(self) -> None:
        if self.control_plane.path is None and self.tls is None:
            raise ValueError("a TCP control plane address needs Envoy's client certificate")


def render_bootstrap(options: BootstrapOptions, template: Traversable = BOOTSTRAP) -> dict[str, Any]:
    """The shipped bootstrap with this control plane's node id, admin socket and address (and TLS over TCP)."""
    config: dict[str, Any] = yaml.safe_load(template.read_text())
    config["node"]["id"] = options.node_id
    config["admin"]["address"] = {"pipe": {"path": str(options.admin_socket), "mode": ADMIN_SOCKET_MODE}}
    config["dynamic_resources"]["ads_config"]["api_type"] = options.api_type
    monitors = {m["name"]: m["typed_config"] for m in config["overload_manager"]["resource_monitors"]}
    monitors[HEAP_MONITOR]["max_heap_size_bytes"] = options.max_heap_bytes
    monitors[CONNECTIONS_MONITOR]["max_active_downstream_connections"] = options.max_downstream_connections
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == CONTROL_PLANE_CLUSTER]
    endpoint = {"endpoint": {"address": _address(options.control_plane)}}
    cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [endpoint]}]
    cluster.pop("transport_socket", None)
    if options.tls is not None and options.control_plane.path is None:
        cluster["transport_socket"] = _client_tls(options.tls)
    return config


def bootstrap_text(options: BootstrapOptions) -> str:
    return yaml.safe_dump(render_bootstrap(options))


def install_bootstrap(path: Path, text: str) -> bool:
    """Write the bootstrap (0600) unless it is already there as is; True if the file changed."""
    if path.exists() and path.read_text() == text:
        return False
    write_private(path, text.encode())
    return True


def _address(address: ControlAddress) -> dict[str, Any]:
    if address.path is not None:
        return {"pipe": {"path": str(address.path)}}
    return {"socket_address": {"address": address.host, "port_value": address.port}}


def _client_tls(tls: EnvoyTls) -> dict[str, Any]:
    """Envoy proves itself with its certificate and accepts only the control plane's (CA and name checked)."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": SERVER_NAME,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [{
                    "certificate_chain": {"inline_string": tls.client.cert_pem.decode()},
                    "private_key": {"inline_string": tls.client.key_pem.decode()},
                }],
                "validation_context": {
                    "trusted_ca": {"inline_string": tls.ca_pem.decode()},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": SERVER_NAME}}],
                },
            },
        },
    }  # fmt: skip
