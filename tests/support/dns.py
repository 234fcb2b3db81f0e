"""A tiny authoritative DNS server for tests: answers A records for the names it is given, NXDOMAIN else.

Envoy resolves through it, so no test ever asks the machine's resolver.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Mapping


class DnsServer:
    def __init__(self, records: Mapping[str, str], ttl: int = 1) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.ttl = ttl
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self._sock.recvfrom(2048)
            except OSError:
                return
            reply = self.answer(data)
            if reply:
                self._sock.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident = struct.unpack(">H", query[:2])[0]
        name, offset = _read_name(query, 12)
        qtype = struct.unpack(">H", query[offset : offset + 2])[0]
        question = query[12 : offset + 4]
        self.queries.append(name)
        address = self.records.get(name)
        if address is None:
            return struct.pack(">HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question
        if qtype != 1:  # only A records; an empty NOERROR answer for the rest
            return struct.pack(">HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question
        record = struct.pack(">HHHLH", 0xC00C, 1, 1, self.ttl, 4) + socket.inet_aton(address)
        return struct.pack(">HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + record


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1 : offset + 1 + length].decode().lower())
        offset += 1 + length
    return ".".join(labels), offset + 1
