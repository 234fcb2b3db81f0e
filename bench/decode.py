"""Reading Envoy's access-log entries: Sandgate's reader against envoy-data-plane's generated classes.

    .venv/bin/python -m bench.decode [--rounds 5]

One batch of 25 entries shaped like Envoy's (about 680 bytes each: addresses, timings, the token's claims
in the metadata, the deny header), serialized once. Each round times both readers on it, interleaved;
median and spread of µs per entry. No network.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

from envoy_data_plane.envoy.config.core.v3 import Address, Metadata, Pipe, RequestMethod, SocketAddress
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
from envoy_data_plane.google.protobuf import Struct

from control_plane.audit.access_log import to_event
from control_plane.audit.als_wire import logged_requests
from control_plane.envoy_contract import session_of

ENTRIES = 25
CLAIMS = {"iss": "sandgate", "aud": "s-0123456789abcdef", "sid": "s-0123456789abcdef", "jti": "x" * 22,
          "iat": 1795926269, "exp": 1795929869, "sub": "session"}  # fmt: skip


def batch() -> bytes:
    start = datetime.datetime(2026, 11, 29, 4, 0, tzinfo=datetime.UTC)
    ms = datetime.timedelta(milliseconds=1)
    upstream = Address(socket_address=SocketAddress(address="127.0.0.1", port_value=8080))
    claims = Metadata(filter_metadata={"envoy.filters.http.jwt_authn": Struct.from_dict({"jwt_payload": CLAIMS})})
    entry = HttpAccessLogEntry(
        common_properties=AccessLogCommon(
            downstream_remote_address=Address(pipe=Pipe(path="@")),
            downstream_local_address=Address(pipe=Pipe(path="/var/lib/sandgate/sessions/s-0123456789abcdef/proxy.sock")),
            start_time=start, time_to_last_rx_byte=ms, time_to_first_upstream_tx_byte=ms,
            time_to_last_upstream_tx_byte=ms, time_to_first_upstream_rx_byte=ms, time_to_last_upstream_rx_byte=ms,
            time_to_first_downstream_tx_byte=ms, time_to_last_downstream_tx_byte=2 * ms,
            upstream_remote_address=upstream, upstream_local_address=upstream, upstream_cluster="sandgate_egress",
            metadata=claims,
            route_name="allow:allowed.test", downstream_direct_remote_address=upstream,
            stream_id="737c8f36-0743-449d-9e55-7bbce66c89ef", access_log_type=AccessLogType.DownstreamEnd,
        ),
        request=HttpRequestProperties(request_method=RequestMethod.GET, scheme="http", authority="allowed.test:8080",
                                      path="/", user_agent="curl/7.88.1", request_id="x" * 36,
                                      request_headers_bytes=124),
        response=HttpResponseProperties(response_code=200, response_headers_bytes=100, response_body_bytes=23,
                                        response_code_details="via_upstream"),
    )  # fmt: skip
    logs = StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[entry] * ENTRIES)
    return bytes(StreamAccessLogsMessage(http_logs=logs))


def sandgate(message: bytes) -> None:
    for entry in logged_requests(message):
        to_event(entry, session_of(entry.listener_path))


def generated(message: bytes) -> None:
    StreamAccessLogsMessage.parse(message)


def us_per_entry(read: Callable[[bytes], None], message: bytes, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        read(message)
    return (time.perf_counter() - start) / repeat / ENTRIES * 1e6


def main(rounds: int) -> None:
    message = batch()
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(us_per_entry(sandgate, message, 400))
        theirs.append(us_per_entry(generated, message, 20))
    ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
    print(f"command: python -m bench.decode --rounds {rounds}  ({len(message) // ENTRIES} bytes an entry)")
    print("| reader | µs per entry (median) | spread |")
    print("|---|---|---|")
    print(f"| envoy-data-plane generated classes (baseline) | {statistics.median(theirs):.1f} | "
          f"{min(theirs):.1f}-{max(theirs):.1f} |")  # fmt: skip
    print(f"| Sandgate: upb subset parse + decision event | {statistics.median(ours):.1f} | "
          f"{min(ours):.1f}-{max(ours):.1f} |")  # fmt: skip
    print(f"\nSandgate is {statistics.median(ratios):.0f}x faster (spread {min(ratios):.0f}-{max(ratios):.0f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
