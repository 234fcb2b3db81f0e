"""The control plane's gRPC server for Envoy (xDS, ext_authz, access logs), on an authenticated channel only.

A unix socket is created 0600 (root only: Envoy runs as root); TCP is served with mutual TLS, and a peer
without a client certificate from the channel's CA fails the handshake before any RPC.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from control_plane.channel.address import ControlAddress
from control_plane.channel.pki import ChannelPki

SOCKET_MODE = 0o600


async def start_control_server(
    address: ControlAddress, pki: ChannelPki | None, handlers: Sequence[grpc.GenericRpcHandler]
) -> tuple[grpc.aio.Server, ControlAddress]:
    """Serve `handlers` at `address` (TCP needs `pki`); returns the server and the address really bound."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers)
    if address.path is not None:
        address.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _private_files():  # the socket is 0600 from the moment it exists
            port: int = server.add_insecure_port(address.grpc_target)
        os.chmod(address.path, SOCKET_MODE)  # whatever the umask did
    else:
        if pki is None:
            raise ValueError("a TCP control channel needs its certificates")
        port = server.add_secure_port(address.grpc_target, server_credentials(pki))
    await server.start()
    return server, address.with_port(port)


def server_credentials(pki: ChannelPki) -> grpc.ServerCredentials:
    """TLS with the control plane's certificate, demanding a client certificate signed by the channel's CA."""
    return grpc.ssl_server_credentials(
        [(pki.server.key_pem, pki.server.cert_pem)], root_certificates=pki.ca.cert_pem, require_client_auth=True
    )


def certified_node(context: Any) -> str | None:
    """The node id a TLS peer's client certificate names (its common name).

    None on the unix socket: its mode already admits root only, and root may speak for any node.
    """
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    names = auth.get("x509_common_name") or [b""]
    return bytes(names[0]).decode()


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)
