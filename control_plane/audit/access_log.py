"""Envoy's access-log service (gRPC ALS): every request and tunnel a sandbox made becomes a decision event."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from control_plane.audit.als_wire import logged_requests
from control_plane.audit.decisions import DecisionLog
from control_plane.audit.entries import LoggedRequest, destination, verdict
from control_plane.audit.events import DecisionEvent
from control_plane.envoy_contract import credential_of, session_of

log = logging.getLogger(__name__)
SERVICE = "envoy.service.accesslog.v3.AccessLogService"
_EMPTY_RESPONSE = b""  # StreamAccessLogsResponse has no fields


def to_event(entry: LoggedRequest, session_id: str) -> DecisionEvent:
    verdict_name, reason = verdict(entry)
    host, port = destination(entry)
    return DecisionEvent(
        id=0, time=entry.start_time, session_id=session_id, method=entry.method,
        host=host, port=port, verdict=verdict_name, reason=reason, response_code=entry.response_code,
        bytes_sent=entry.bytes_sent, bytes_received=entry.bytes_received, duration_ms=round(entry.duration_ms, 3),
        source="envoy", stream_id=entry.stream_id, path=entry.path, credential=credential_of(entry.route_name),
    )  # fmt: skip


class Activity(Protocol):
    """Where the idle timeout learns that a session is in use."""

    def touch(self, session_id: str, when: float | None = None) -> None: ...
    def in_use(self, session_id: str, delta: int) -> None: ...


class AccessLogReceiver:
    def __init__(self, decisions: DecisionLog, activity: Activity) -> None:
        self._decisions = decisions
        self._activity = activity

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_unary_rpc_method_handler(self.stream, request_deserializer=None, response_serializer=None)
        return grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": method})

    async def stream(self, messages: AsyncIterator[bytes], context: Any) -> bytes:
        open_tunnels: Counter[str] = Counter()  # this Envoy worker's open tunnels, by session
        try:
            async for message in messages:
                try:
                    entries = logged_requests(message)
                except ValueError:  # a message we cannot read must not end the stream
                    log.exception("access log: cannot read a message of %d bytes", len(message))
                    self._decisions.lost("unreadable-message")  # at least one entry
                    continue
                self.record(entries, open_tunnels)
        finally:  # the stream ended (Envoy went away): its tunnels are gone with it
            for session_id, count in open_tunnels.items():
                if count:
                    self._activity.in_use(session_id, -count)
        return _EMPTY_RESPONSE

    def record(self, entries: list[LoggedRequest], open_tunnels: Counter[str]) -> None:
        """Decisions from one stream's batch of entries; that stream's open tunnels are counted in `open_tunnels`."""
        events: list[DecisionEvent] = []
        active: set[str] = set()
        for entry in entries:
            session_id = session_of(entry.listener_path)
            active.add(session_id)
            if entry.periodic:  # a long request or tunnel, still running: activity, not a new decision
                continue
            if entry.opens_tunnel:
                open_tunnels[session_id] += 1
                self._activity.in_use(session_id, +1)
            if entry.closes_tunnel:
                if open_tunnels[session_id] > 0:  # its opening was seen on this stream
                    open_tunnels[session_id] -= 1
                    self._activity.in_use(session_id, -1)
                self._decisions.record_many(events)  # in order: its opening may be in this same batch
                events = []
                self._decisions.complete_tunnel(to_event(entry, session_id))
            else:
                events.append(to_event(entry, session_id))
        self._decisions.record_many(events)
        now = time.time()
        for session_id in active:
            self._activity.touch(session_id, now)
