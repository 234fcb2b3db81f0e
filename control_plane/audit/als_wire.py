"""StreamAccessLogsMessage bytes to LoggedRequests, reading only the fields a decision needs.

This runs for every request a sandbox makes, so it walks the wire format directly: one pass over each
nested message, no objects for the fields it skips. About 10 µs an entry, against about 200 µs for the
generated classes.
"""

from __future__ import annotations

from control_plane.audit.entries import LoggedRequest
from control_plane.wire import LEN, VARINT, fields, seconds, string_map, sub, text, varint

METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS", 8: "TRACE", 9: "PATCH"}
LOG_TYPES = {6: "DownstreamEnd", 10: "DownstreamTunnelSuccessfullyEstablished"}
DENY_HEADER = "x-sandgate-deny-reason"


def logged_requests(message: bytes) -> list[LoggedRequest]:
    out = []
    for f in fields(message):
        if f[0] == 2:  # http_logs
            out += [_entry(message, g[2], g[3]) for g in fields(message, f[2], f[3]) if g[0] == 1]
    return out


def _entry(buf: bytes, start: int, end: int) -> LoggedRequest:
    v: dict[str, object] = {"method": "", "authority": "", "response_code": 0, "details": "", "route_name": "",
                            "deny_header": "", "bytes_sent": 0, "bytes_received": 0, "duration_ms": 0.0,
                            "start_time": 0.0, "listener_path": "", "stream_id": "", "log_type": "NotSet"}  # fmt: skip
    for number, kind, a, b in fields(buf, start, end):
        if kind != LEN:
            continue
        if number == 1:
            _common(buf, a, b, v)
        elif number == 3:
            _request(buf, a, b, v)
        elif number == 4:
            _response(buf, a, b, v)
    return LoggedRequest(**v)  # type: ignore[arg-type]


def _common(buf: bytes, pos: int, end: int, v: dict[str, object]) -> None:
    while pos < end:
        key, pos = varint(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = varint(buf, pos)
            if number == 33:
                v["log_type"] = LOG_TYPES.get(value, "Other")
            continue
        if kind != LEN:  # fixed-width: sample_rate
            pos += 8 if kind == 1 else 4
            continue
        length, pos = varint(buf, pos)
        field = (number, kind, pos, pos + length)
        if number == 3 and (pipe := sub(buf, field, 2)) and (path := sub(buf, pipe, 1)):
            v["listener_path"] = text(buf, path)
        elif number == 5:
            v["start_time"] = seconds(buf, field)
        elif number == 12:
            v["duration_ms"] = seconds(buf, field) * 1000
        elif number == 19:
            v["route_name"] = text(buf, field)
        elif number == 26:
            v["stream_id"] = text(buf, field)
        pos += length


def _request(buf: bytes, pos: int, end: int, v: dict[str, object]) -> None:
    sent = 0
    while pos < end:
        key, pos = varint(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = varint(buf, pos)
            if number == 1:
                v["method"] = METHODS.get(value, "OTHER")
            elif number in (11, 12):
                sent += value
            continue
        length, pos = varint(buf, pos)
        if number == 3:
            v["authority"] = buf[pos : pos + length].decode("utf-8", "replace")
        pos += length
    v["bytes_sent"] = sent


def _response(buf: bytes, pos: int, end: int, v: dict[str, object]) -> None:
    received = 0
    while pos < end:
        key, pos = varint(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = varint(buf, pos)
            if number in (2, 3):
                received += value
            continue
        length, pos = varint(buf, pos)
        field = (number, kind, pos, pos + length)
        if number == 1 and (code := sub(buf, field, 1)):
            v["response_code"] = code[2]
        elif number == 4:
            key_text, value_text = string_map(buf, field)
            if key_text == DENY_HEADER:
                v["deny_header"] = value_text
        elif number == 6:
            v["details"] = text(buf, field)
        pos += length
    v["bytes_received"] = received
