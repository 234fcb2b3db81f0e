"""Envoy's access-log service (gRPC ALS): every request and tunnel a sandbox made becomes a decision event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy_data_plane.envoy.data.accesslog.v3 import HttpAccessLogEntry
from envoy_data_plane.envoy.service.accesslog.v3 import StreamAccessLogsMessage, StreamAccessLogsResponse

from control_plane.audit.decisions import DecisionEvent, DecisionLog
from control_plane.audit.entries import LoggedRequest, destination, session_of, verdict

log = logging.getLogger(__name__)
SERVICE = "envoy.service.accesslog.v3.AccessLogService"
DENY_HEADER = "x-sandgate-deny-reason"


def logged_request(entry: HttpAccessLogEntry) -> LoggedRequest:
    common, req, resp = entry.common_properties, entry.request, entry.response
    local = common.downstream_local_address if common else None
    duration = common.time_to_last_downstream_tx_byte if common else None
    return LoggedRequest(
        listener_path=local.pipe.path if local and local.pipe else "",
        method=req.request_method.name if req else "",
        authority=req.authority if req else "",
        response_code=(resp.response_code or 0) if resp else 0,
        details=resp.response_code_details if resp else "",
        route_name=common.route_name if common else "",
        deny_header=resp.response_headers.get(DENY_HEADER, "") if resp else "",
        bytes_sent=(req.request_headers_bytes + req.request_body_bytes) if req else 0,
        bytes_received=(resp.response_headers_bytes + resp.response_body_bytes) if resp else 0,
        duration_ms=duration.total_seconds() * 1000 if duration else 0.0,
        start_time=common.start_time.timestamp() if common and common.start_time else 0.0,
        stream_id=common.stream_id if common else "",
        log_type=common.access_log_type.name if common and common.access_log_type else "NotSet",
    )


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
        method = grpc.stream_unary_rpc_method_handler(
            self.stream, request_deserializer=StreamAccessLogsMessage.parse, response_serializer=bytes
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": method})

    async def stream(self, messages: AsyncIterator[StreamAccessLogsMessage], context: Any) -> StreamAccessLogsResponse:
        async for message in messages:
            entries = message.http_logs.log_entry if message.http_logs else []
            events = []
            for entry in entries:
                try:
                    logged = logged_request(entry)
                except Exception:  # one odd entry must not lose the others
                    log.exception("access log: cannot read an entry")
                    continue
                if logged.closes_tunnel:
                    self._decisions.complete_tunnel(
                        logged.stream_id, logged.bytes_sent, logged.bytes_received, logged.duration_ms
                    )
                else:
                    events.append(to_event(logged))
            self._decisions.record_many(events)
        return StreamAccessLogsResponse()
