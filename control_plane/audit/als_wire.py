"""StreamAccessLogsMessage bytes to LoggedRequests, reading only the fields a decision needs.

This runs for every request a sandbox makes. The bytes are parsed as `protos/sandgate/wire/access_log.proto`,
a subset of Envoy's messages with the same field numbers: the protobuf runtime (upb, in C) skips every other
field. `bench/decode.py` measures it against envoy-data-plane's generated classes (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from control_plane.api.gen.sandgate.wire import access_log_pb2 as pb
from control_plane.audit.entries import LoggedRequest
from control_plane.envoy_contract import DENY_HEADER, INSPECTED_LISTENER_PREFIX

METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS", 8: "TRACE", 9: "PATCH"}
LOG_TYPES = {5: "DownstreamPeriodic", 6: "DownstreamEnd", 10: "DownstreamTunnelSuccessfullyEstablished"}


def logged_requests(message: bytes) -> list[LoggedRequest]:
    """Raises ValueError if the bytes are not a StreamAccessLogsMessage."""
    try:
        parsed = pb.StreamAccessLogsMessage.FromString(message)
    except DecodeError as e:
        raise ValueError(f"not an access-log message: {e}") from e
    return [_entry(e) for e in parsed.http_logs.log_entry]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _listener_path(address: pb.Address) -> str:
    """The session listener's socket path; for a request decrypted on a session's internal listener
    (`inspect-session-<id>`), a path of the same shape, so that `session_of` reads it alike."""
    if address.pipe.path:
        return _text(address.pipe.path)
    name = _text(address.envoy_internal_address.server_listener_name)
    if not name.startswith(INSPECTED_LISTENER_PREFIX):
        return ""
    return f"inspect/{name.removeprefix(INSPECTED_LISTENER_PREFIX)}/tls"


def _entry(e: pb.HTTPAccessLogEntry) -> LoggedRequest:
    common, request, response = e.common_properties, e.request, e.response
    start, duration = common.start_time, common.time_to_last_downstream_tx_byte
    return LoggedRequest(
        listener_path=_listener_path(common.downstream_local_address),
        method=METHODS.get(request.request_method, "OTHER") if request.request_method else "",
        authority=_text(request.authority),
        path=_text(request.path).partition("?")[0],
        response_code=response.response_code.value,
        details=_text(response.response_code_details),
        route_name=_text(common.route_name),
        deny_header=_text(response.response_headers.get(DENY_HEADER, b"")),
        bytes_sent=request.request_headers_bytes + request.request_body_bytes,
        bytes_received=response.response_headers_bytes + response.response_body_bytes,
        duration_ms=duration.seconds * 1000 + duration.nanos / 1e6,
        start_time=start.seconds + start.nanos / 1e9,
        stream_id=_text(common.stream_id),
        log_type=LOG_TYPES.get(common.access_log_type, "Other") if common.access_log_type else "NotSet",
    )
