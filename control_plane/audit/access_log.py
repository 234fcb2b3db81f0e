"""Envoy's access-log service (gRPC ALS): every request and tunnel a sandbox made becomes a decision event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from control_plane.audit.als_wire import logged_requests
from control_plane.audit.decisions import DecisionEvent, DecisionLog
from control_plane.audit.entries import LoggedRequest, destination, session_of, verdict

log = logging.getLogger(__name__)
SERVICE = "envoy.service.accesslog.v3.AccessLogService"
_EMPTY_RESPONSE = b""  # StreamAccessLogsResponse has no fields


def to_event(entry: LoggedRequest) -> DecisionEvent:
    verdict_name, reason = verdict(entry)
    host, port = destination(entry)
    return DecisionEvent(
        id=0, time=entry.start_time, session_id=session_of(entry.listener_path), method=entry.method,
        host=host, port=port, verdict=verdict_name, reason=reason, response_code=entry.response_code,
        bytes_sent=entry.bytes_sent, bytes_received=entry.bytes_received, duration_ms=round(entry.duration_ms, 3),
        source="envoy", stream_id=entry.stream_id,
    )  # fmt: skip


class AccessLogReceiver:
    def __init__(self, decisions: DecisionLog) -> None:
        self._decisions = decisions

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_unary_rpc_method_handler(self.stream, request_deserializer=None, response_serializer=None)
        return grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": method})

    async def stream(self, messages: AsyncIterator[bytes], context: Any) -> bytes:
        async for message in messages:
            try:
                entries = logged_requests(message)
            except ValueError:  # a message we cannot read must not end the stream
                log.exception("access log: cannot read a message of %d bytes", len(message))
                continue
            self.record(entries)
        return _EMPTY_RESPONSE

    def record(self, entries: list[LoggedRequest]) -> None:
        events = []
        for entry in entries:
            if entry.closes_tunnel:
                self._decisions.complete_tunnel(to_event(entry))
            else:
                events.append(to_event(entry))
        self._decisions.record_many(events)
