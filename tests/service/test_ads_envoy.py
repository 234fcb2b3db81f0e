"""The ADS server against a real Envoy, in both SotW and Delta modes and over both control channels (the unix
socket, and TCP with mutual TLS): push, ACK, update, NACK, removal."""

from __future__ import annotations

import asyncio
import base64
import datetime
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.channel.address import ControlAddress
from control_plane.channel.bootstrap import BootstrapOptions, EnvoyTls, bootstrap_text
from control_plane.channel.pki import load_or_mint
from control_plane.channel.server import start_control_server
from control_plane.domain import tokens
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import Limits, Session, State
from control_plane.envoy_process import EnvoyOptions, ManagedEnvoy, default_binary
from control_plane.errors import Rejected
from control_plane.xds import render
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.resource import build
from control_plane.xds.server import AdsServer
from control_plane.xds.types import ROUTE
from tests.support.upstream import Upstream

NODE = "ads-test"


async def _request(sock: Path, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(raw)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    return head


@pytest.fixture(params=[("DELTA_GRPC", "unix"), ("GRPC", "unix"), ("DELTA_GRPC", "mtls")], ids="-".join)
async def envoy_and_cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[SnapshotCache, Path]]:
    api_type, channel = request.param
    cache = SnapshotCache()
    pki = load_or_mint(tmp_path / "tls", NODE, datetime.datetime.now(datetime.UTC)) if channel == "mtls" else None
    address = ControlAddress(host="127.0.0.1") if pki else ControlAddress(path=tmp_path / "xds.sock")
    server, bound = await start_control_server(address, pki, [AdsServer(cache).handler()])
    tls = EnvoyTls(pki.ca.cert_pem, pki.envoy) if pki else None
    bootstrap = bootstrap_text(BootstrapOptions(NODE, tmp_path / "admin.sock", bound, api_type, tls))
    envoy = ManagedEnvoy(EnvoyOptions(default_binary(), tmp_path / "bootstrap.yaml", tmp_path))
    await envoy.start(bootstrap)
    yield cache, tmp_path
    await envoy.stop()
    await server.stop(0)


async def test_push_ack_update_nack_and_remove(envoy_and_cache: tuple[SnapshotCache, Path]) -> None:
    cache, tmp = envoy_and_cache
    key = tokens.generate_key(time.time())
    session = Session("s-00000000000000aa", State.READY, NODE, "img", 0, time.time() + 60, (), Limits(64, 1, 512))
    egress = EgressSettings()
    sock = tmp / "proxy.sock"
    listener = render.session_listener(session, sock, tokens.jwks([key]), egress)
    routes = render.session_routes(session, Policy())
    cache.publish(NODE, [render.egress_cluster(egress), *render.shared_filters(egress), routes, listener])
    await cache.wait_applied(NODE, {(listener.type_url, listener.name): listener.version}, 15)
    await cache.wait_applied(NODE, {(routes.type_url, routes.name): routes.version}, 15)

    token = tokens.mint(key, session.id, "jti", time.time(), time.time() + 60)
    auth = base64.b64encode(f"u:{token}".encode()).decode()
    with Upstream() as up:
        target = f"127.0.0.1:{up.port}"
        raw = f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
        assert (await _request(sock, raw.encode())).startswith(b"HTTP/1.1 403")  # not allowed yet
        allowed = render.session_routes(session.with_egress((EgressRule("127.0.0.1", (up.port,)),)), Policy())
        cache.publish(NODE, [allowed])
        await cache.wait_applied(NODE, {(allowed.type_url, allowed.name): allowed.version}, 5)
        assert (await _request(sock, raw.encode())).startswith(b"HTTP/1.1 200")

    broken = build(ROUTE, {"name": routes.name, "virtual_hosts": [
        {"name": "x", "domains": ["*"], "routes": [
            {"match": {"safe_regex": {"regex": "("}}, "direct_response": {"status": 200}}]}]})  # fmt: skip
    cache.publish(NODE, [broken])
    with pytest.raises(Rejected, match=routes.name) as err:
        await cache.wait_applied(NODE, {(broken.type_url, broken.name): broken.version}, 5)
    assert "regex" not in err.value.message.lower()  # Envoy's own words stay in the log

    cache.publish(NODE, removals=[(listener.type_url, listener.name), (routes.type_url, routes.name)])
    await cache.wait_applied(NODE, {(listener.type_url, listener.name): None}, 5)
    deadline = time.monotonic() + 10
    while await _accepts(sock):  # the listener drains for 2 s, then refuses connections
        assert time.monotonic() < deadline, "removed listener still accepts"
        await asyncio.sleep(0.1)


async def _accepts(sock: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(sock))
    except OSError:
        return False
    writer.close()
    return True
