"""The access-log subset (protos/sandgate/wire) reads what envoy-data-plane's full classes write."""

from __future__ import annotations

import datetime

import pytest
from envoy_data_plane.envoy.config.core.v3 import Address, Pipe, RequestMethod
from envoy_data_plane.envoy.data.accesslog.v3 import (
    AccessLogCommon,
    AccessLogType,
    HttpAccessLogEntry,
    HttpRequestProperties,
    HttpResponseProperties,
)
from envoy_data_plane.envoy.service.accesslog.v3 import (
    StreamAccessLogsMessage,
    StreamAccessLogsMessageHttpAccessLogEntries,
)

from control_plane.audit.als_wire import logged_requests
from control_plane.audit.entries import verdict

START = datetime.datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=datetime.UTC)


def entry(method: RequestMethod, code: int, details: str, route: str, headers: dict[str, str]) -> HttpAccessLogEntry:
    return HttpAccessLogEntry(
        common_properties=AccessLogCommon(
            downstream_local_address=Address(
                pipe=Pipe(path="/var/lib/sandgate/sessions/s-0123456789abcdef/proxy.sock")
            ),
            start_time=START,
            time_to_last_downstream_tx_byte=datetime.timedelta(milliseconds=3, microseconds=500),
            route_name=route,
            stream_id="stream-1",
            access_log_type=AccessLogType.DownstreamTunnelSuccessfullyEstablished,
            upstream_cluster="sandgate_egress",
            sample_rate=1.0,
        ),
        request=HttpRequestProperties(
            request_method=method,
            authority="allowed.test:8443",
            path="/x",
            request_headers_bytes=120,
            request_body_bytes=30,
            user_agent="curl",
        ),
        response=HttpResponseProperties(
            response_code=code,
            response_headers_bytes=80,
            response_body_bytes=2,
            response_code_details=details,
            response_headers=headers,
        ),
    )


def test_reads_what_the_generated_classes_write() -> None:
    entries = [
        entry(RequestMethod.CONNECT, 200, "via_upstream", "allow:allowed.test", {}),
        entry(
            RequestMethod.GET,
            403,
            "ext_authz_denied",
            "allow:allowed.test",
            {"x-sandgate-deny-reason": "token-revoked"},
        ),
    ]
    message = bytes(StreamAccessLogsMessage(http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=entries)))
    first, second = logged_requests(message)
    assert first.listener_path.endswith("s-0123456789abcdef/proxy.sock")
    assert (first.method, first.authority, first.response_code, first.details) == (
        "CONNECT",
        "allowed.test:8443",
        200,
        "via_upstream",
    )
    assert (first.bytes_sent, first.bytes_received) == (150, 82)
    assert first.duration_ms == pytest.approx(3.5) and first.start_time == pytest.approx(START.timestamp())
    assert (first.stream_id, first.log_type, first.opens_tunnel) == (
        "stream-1",
        "DownstreamTunnelSuccessfullyEstablished",
        True,
    )
    assert verdict(second) == ("deny", "token-revoked")


def test_truncated_input_is_an_error_not_a_wrong_answer() -> None:
    message = bytes(
        StreamAccessLogsMessage(
            http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[entry(RequestMethod.GET, 200, "", "", {})])
        )
    )
    with pytest.raises(ValueError):
        logged_requests(message[:-7])
    with pytest.raises(ValueError):
        logged_requests(b"\x0f")  # wire type 7 does not exist


@pytest.mark.parametrize(
    ("details", "route", "header", "expected"),
    [
        ("via_upstream", "allow:a.test", "host-not-allowed", ("allow", "allowed")),  # an upstream cannot forge a deny
        ("direct_response", "deny:host-not-allowed", "", ("deny", "host-not-allowed")),
        ("jwt_authn_access_denied{Jwt_is_missing}", "allow:a.test", "", ("deny", "token-invalid")),
        (
            "rbac_access_denied_matched_policy[forbidden-destinations]",
            "allow:a.test",
            "",
            ("deny", "destination-ip-forbidden"),
        ),
        ("via_upstream", "would-deny:host-not-allowed", "", ("would_deny", "host-not-allowed")),
        ("upstream_reset_before_response_started{connection_failure}", "allow:a.test", "", ("allow", "allowed")),
        ("http1.codec_error", "", "", ("deny", "bad-request")),  # refused before any route: never an allow
        # Envoy answered itself after it chose an allow route: a limit or an unavailable check, never an allow.
        ("local_rate_limited", "allow:a.test", "rate-limited", ("deny", "rate-limited")),
        ("local_rate_limited", "allow:a.test", "", ("deny", "rate-limited")),
        ("ext_authz_error", "allow:a.test", "", ("deny", "authz-unavailable")),
        ("ext_authz_denied", "allow:a.test", "host-not-allowed", ("deny", "host-not-allowed")),
        ("overload", "", "", ("deny", "proxy-overloaded")),
        ("upstream_reset_before_response_started{overflow}", "allow:a.test", "", ("deny", "upstream-overflow")),
    ],
)
def test_verdicts_come_only_from_envoy(details: str, route: str, header: str, expected: tuple[str, str]) -> None:
    headers = {"x-sandgate-deny-reason": header} if header else {}
    message = bytes(
        StreamAccessLogsMessage(
            http_logs=StreamAccessLogsMessageHttpAccessLogEntries(
                log_entry=[entry(RequestMethod.GET, 200, details, route, headers)]
            )
        )
    )
    assert verdict(logged_requests(message)[0]) == expected


def test_invalid_utf8_from_a_sandbox_costs_no_entries() -> None:
    """A Host header with a byte that is not UTF-8 is recorded as it is; its batch is not lost."""
    entries = [entry(RequestMethod.GET, 403, "direct_response", "deny:host-not-allowed", {}) for _ in range(3)]
    message = bytes(StreamAccessLogsMessage(http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=entries)))
    patched = message.replace(b"allowed.test", b"allow\xffd.test", 1)
    got = logged_requests(patched)
    assert len(got) == 3
    assert got[0].authority == "allow\ufffdd.test:8443" and got[1].authority == "allowed.test:8443"
