"""The control channel (xDS, ext_authz, access logs) admits only authenticated Envoys, and an ADS stream that
never ACKs holds back the ACK waits of its own node only."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from envoy_data_plane.envoy.config.core.v3 import Address, Node, Pipe, RequestMethod
from envoy_data_plane.envoy.data.accesslog.v3 import AccessLogCommon, HttpAccessLogEntry, HttpRequestProperties
from envoy_data_plane.envoy.service.accesslog.v3 import (
    StreamAccessLogsMessage,
    StreamAccessLogsMessageHttpAccessLogEntries,
    StreamAccessLogsMessageIdentifier,
)
from envoy_data_plane.envoy.service.discovery.v3 import DeltaDiscoveryRequest, DeltaDiscoveryResponse

from control_plane.app import App
from control_plane.channel.address import ControlAddress
from control_plane.channel.certs import SERVER_NAME, KeyPair, mint_envoy
from control_plane.channel.server import start_control_server
from control_plane.config import Settings
from control_plane.domain.policy import Policy
from control_plane.domain.session import Limits, Session, State
from control_plane.errors import NotApplied
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher
from control_plane.xds.server import AdsServer
from control_plane.xds.types import CLUSTER, LISTENER, ROUTE
from tests.support.no_sandbox import NoSandboxRuntime

DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
ALS = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
FORGED_SESSION = "s-00000000000000f0"


class FakeEnvoy:
    """A Delta ADS client for one node that subscribes to everything and ACKs every response, or never does."""

    def __init__(self, channel: grpc.aio.Channel, node_id: str, acks: bool, first_only: bool = False) -> None:
        parse = DeltaDiscoveryResponse.parse
        self._call = channel.stream_stream(DELTA, request_serializer=bytes, response_deserializer=parse)
        self._node_id, self._acks, self._first_only = node_id, acks, first_only
        self._requests: asyncio.Queue[DeltaDiscoveryRequest] = asyncio.Queue()
        self.responses = 0
        self.call: Any = None

    async def _outgoing(self) -> AsyncIterator[DeltaDiscoveryRequest]:
        yield DeltaDiscoveryRequest(node=Node(id=self._node_id), type_url=CLUSTER)
        if self._first_only:  # the server decides on the first message; nothing more is written meanwhile
            await asyncio.Event().wait()
        for type_url in (LISTENER, ROUTE):
            yield DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=["*"])
        while True:
            yield await self._requests.get()

    async def run(self) -> None:
        """Until the server ends the stream; raises grpc.aio.AioRpcError if it refuses it."""
        self.call = self._call(self._outgoing())
        async for response in self.call:
            self.responses += 1
            if self._acks:
                ack = DeltaDiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce)
                self._requests.put_nowait(ack)


def session_of(node_id: str, sid: str) -> Session:
    return Session(sid, State.READY, node_id, "img", 0, time.time() + 60, (), Limits(64, 1, 512))


async def refusal(envoy: FakeEnvoy) -> grpc.StatusCode:
    """The status that ends the stream; a stream the server keeps serving fails the test after 10 s.

    The call's own status, not the first error raised.
    """
    with pytest.raises(grpc.aio.AioRpcError):
        async with asyncio.timeout(10):
            await envoy.run()
    code: grpc.StatusCode = await envoy.call.code()
    return code


async def until(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  # conditions on both ends of a stream: nothing to wait on
            await asyncio.sleep(0.02)


async def test_a_stream_that_never_acks_holds_back_only_its_own_node(tmp_path: Path) -> None:
    cache = SnapshotCache()
    publisher = ConfigPublisher(cache, EgressSettings(), lambda sid: tmp_path / sid, lambda: {"keys": []}, Policy, 5)
    for node in ("good", "stuck"):
        publisher.ensure_node(node)
    server, address = await start_control_server(ControlAddress(path=tmp_path / "xds.sock"), None,
                                                 [AdsServer(cache).handler()])  # fmt: skip
    async with grpc.aio.insecure_channel(address.grpc_target) as channel:
        good, stuck = FakeEnvoy(channel, "good", acks=True), FakeEnvoy(channel, "stuck", acks=False)
        tasks = [asyncio.create_task(envoy.run()) for envoy in (good, stuck)]
        await until(lambda: cache.streams("good") and cache.streams("stuck") and stuck.responses > 0)

        await publisher.wait(publisher.put_session(session_of("good", "s-000000000000000a")))  # not held back

        with pytest.raises(NotApplied, match="session-s-000000000000000b"):  # the stuck stream is really there
            await publisher.wait(publisher.put_session(session_of("stuck", "s-000000000000000b")), 0.5)
        for task in tasks:
            task.cancel()
    await server.stop(0)


@pytest.fixture()
async def tcp_app(tmp_path: Path) -> AsyncIterator[App]:
    """The control plane with a TCP control channel and an external Envoy (none runs here)."""
    settings = Settings(
        state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0", xds_addr="127.0.0.1:0",
        node_id="channel-test", api_token="t", admin_token="t", manage_envoy=False, warm_pool_size=0,
    )  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    yield app
    await app.stop()


def envoy_credentials(app: App) -> tuple[bytes, KeyPair]:
    """The CA and client certificate in the bootstrap the control plane wrote for its external Envoy."""
    boot = yaml.safe_load(app.settings.envoy_bootstrap_path.read_text())
    (cluster,) = boot["static_resources"]["clusters"]
    tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    (pair,) = tls["tls_certificates"]
    client = KeyPair(pair["certificate_chain"]["inline_string"].encode(), pair["private_key"]["inline_string"].encode())
    return tls["validation_context"]["trusted_ca"]["inline_string"].encode(), client


def channel_to(app: App, ca: bytes, client: KeyPair | None) -> grpc.aio.Channel:
    target = app.control_address.grpc_target
    if client is None and not ca:
        return grpc.aio.insecure_channel(target)
    key, chain = (client.key_pem, client.cert_pem) if client else (None, None)
    creds = grpc.ssl_channel_credentials(ca, key, chain)
    return grpc.aio.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def forged_log() -> StreamAccessLogsMessage:
    """An `allow` that never happened, for a session that is not there."""
    entry = HttpAccessLogEntry(
        common_properties=AccessLogCommon(
            downstream_local_address=Address(pipe=Pipe(path=f"/x/sessions/{FORGED_SESSION}/proxy.sock")),
            route_name="allow:forged.test",
        ),
        request=HttpRequestProperties(request_method=RequestMethod.GET, authority="forged.test"),
    )
    return StreamAccessLogsMessage(
        identifier=StreamAccessLogsMessageIdentifier(node=Node(id="channel-test"), log_name="forged"),
        http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[entry]),
    )


async def send_log(channel: grpc.aio.Channel) -> None:
    async def messages() -> AsyncIterator[bytes]:
        yield bytes(forged_log())

    await channel.stream_unary(ALS)(messages(), timeout=5)


async def test_files_of_the_tcp_channel_are_root_only(tcp_app: App) -> None:
    tls_dir = tcp_app.settings.state_dir / "tls"
    assert tls_dir.stat().st_mode & 0o777 == 0o700
    for path in [*tls_dir.iterdir(), tcp_app.settings.envoy_bootstrap_path]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert "ca-key.pem" in {p.name for p in tls_dir.iterdir()}
    assert "PRIVATE KEY" not in envoy_credentials(tcp_app)[0].decode()  # Envoy gets the CA certificate, not its key


@pytest.mark.parametrize("peer", ["plaintext", "tls-without-client-certificate"])
async def test_a_peer_without_envoys_certificate_can_neither_stream_config_nor_send_logs(
    tcp_app: App, peer: str
) -> None:
    ca = envoy_credentials(tcp_app)[0] if peer != "plaintext" else b""
    async with channel_to(tcp_app, ca, None) as channel:
        ads = await refusal(FakeEnvoy(channel, "channel-test", acks=False, first_only=True))
        with pytest.raises(grpc.aio.AioRpcError) as als:
            await send_log(channel)
    assert ads == als.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake failed
    assert not tcp_app.parts.cache.streams("channel-test")
    assert not await tcp_app.parts.decisions.query(FORGED_SESSION)


async def test_envoys_certificate_opens_the_channel(tcp_app: App) -> None:
    ca, client = envoy_credentials(tcp_app)
    async with channel_to(tcp_app, ca, client) as channel:
        envoy = FakeEnvoy(channel, "channel-test", acks=True)
        task = asyncio.create_task(envoy.run())
        await until(lambda: tcp_app.parts.cache.in_sync("channel-test"))
        await send_log(channel)
        await until(lambda: bool(tcp_app.state.journal.query(FORGED_SESSION)))  # so the refusal above is no accident
        task.cancel()


async def test_a_certificate_speaks_for_its_own_node_only(tcp_app: App) -> None:
    ca, _ = envoy_credentials(tcp_app)
    pki = tcp_app.state.pki
    assert pki is not None
    intruder = mint_envoy(pki.ca, "another-node", datetime.datetime.now(datetime.UTC))
    async with channel_to(tcp_app, ca, intruder) as channel:
        code = await refusal(FakeEnvoy(channel, "channel-test", acks=False, first_only=True))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert not tcp_app.parts.cache.streams("channel-test")


async def test_the_unix_channel_is_a_root_only_socket(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
                        node_id="unix-test", manage_envoy=False, warm_pool_size=0)  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    try:
        xds = settings.envoy_dir / "xds.sock"
        assert app.control_address.path == xds and xds.is_socket() and xds.stat().st_mode & 0o777 == 0o600
        assert settings.envoy_dir.stat().st_mode & 0o777 == 0o700 and app.state.pki is None
        assert not (settings.state_dir / "tls").exists()
        boot = yaml.safe_load(settings.envoy_bootstrap_path.read_text())
        assert boot["admin"]["address"] == {"pipe": {"path": str(settings.envoy_dir / "admin.sock"), "mode": 0o600}}
    finally:
        await app.stop()
