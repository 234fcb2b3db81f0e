"""The ADS server: SotW and Delta streams over grpc.aio, fed by the snapshot cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc

from control_plane.api.gen.sandgate.wire.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from control_plane.channel.server import certified_node
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.snapshot import Snapshot
from control_plane.xds.streams import DeltaStream, SotwStream, rejection

log = logging.getLogger(__name__)
SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


class _Stream(Protocol):
    node_id: str
    wakeup: asyncio.Event

    def on_request(self, req: Any) -> None: ...
    def responses(self, snapshot: Snapshot) -> Any: ...


class AdsServer:
    def __init__(self, cache: SnapshotCache, on_nack: Callable[[str], None] | None = None) -> None:
        """`on_nack(type_url)` is told of every response an Envoy rejected."""
        self._cache = cache
        self._on_nack = on_nack

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self._sotw,
                    request_deserializer=DiscoveryRequest.FromString,
                    response_serializer=DiscoveryResponse.SerializeToString,
                ),
                "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self._delta,
                    request_deserializer=DeltaDiscoveryRequest.FromString,
                    response_serializer=DeltaDiscoveryResponse.SerializeToString,
                ),
            },
        )

    async def _sotw(self, requests: AsyncIterator[DiscoveryRequest], context: Any) -> AsyncIterator[Any]:
        first = await anext(requests)
        async for response in self._serve(SotwStream(node_id=await _node_id(first, context)), first, requests):
            yield response

    async def _delta(self, requests: AsyncIterator[DeltaDiscoveryRequest], context: Any) -> AsyncIterator[Any]:
        first = await anext(requests)
        async for response in self._serve(DeltaStream(node_id=await _node_id(first, context)), first, requests):
            yield response

    async def _serve(self, stream: _Stream, first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        log.info("xds: %s stream from node %s", type(stream).__name__, stream.node_id)
        stream.on_request(first)
        await self._cache.attach(stream)  # type: ignore[arg-type]
        reader = asyncio.create_task(self._read(stream, requests))
        stream.wakeup.set()
        try:
            while not reader.done():
                await stream.wakeup.wait()
                stream.wakeup.clear()
                for response in stream.responses(self._cache.snapshot(stream.node_id)):
                    yield response
        finally:
            reader.cancel()
            await self._cache.detach(stream)  # type: ignore[arg-type]
            log.info("xds: stream from node %s closed", stream.node_id)

    async def _read(self, stream: _Stream, requests: AsyncIterator[Any]) -> None:
        try:
            async for req in requests:
                if (error := rejection(req)) is not None:
                    log.warning("xds: node %s NACKed %s: %s", stream.node_id, req.type_url, error)
                    if self._on_nack:
                        self._on_nack(req.type_url)
                stream.on_request(req)
                await self._cache.report()
                stream.wakeup.set()
        finally:
            stream.wakeup.set()


async def _node_id(first: Any, context: Any) -> str:
    """The node id on the first request of a stream. A stream without one is refused, and so is one whose
    TLS client certificate names another node: an Envoy cannot hold back another node's ACK waits."""
    if not first.node.id:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "xDS stream without a node id on its first request")
    node_id = str(first.node.id)
    certified = certified_node(context)
    if certified is not None and certified != node_id:
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED, f"this client certificate is for node {certified!r}, not {node_id!r}"
        )
    return node_id
