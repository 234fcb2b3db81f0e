"""A tiny authoritative DNS server for tests: answers A and AAAA records for the names it is given.

Envoy resolves through it, so no test ever asks the machine's resolver. A name may have several
addresses, of both families, as an attacker's zone would: `records["x.test"] = ["203.0.113.5", "127.0.0.1"]`.
Names it does not know get NXDOMAIN.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Mapping, Sequence

_A, _AAAA = 1, 28


class DnsServer:
    def __init__(self, records: Mapping[str, str | Sequence[str]], ttl: int = 1) -> None:
        self.records: dict[str, str | Sequence[str]] = {k.lower().rstrip("."): v for k, v in records.items()}
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
        known = self.records.get(name)
        if known is None:
            return struct.pack(">HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question
        addresses = [known] if isinstance(known, str) else list(known)
        records = [self._record(qtype, a) for a in addresses]
        answers = [r for r in records if r]
        return struct.pack(">HHHHHH", ident, 0x8180, 1, len(answers), 0, 0) + question + b"".join(answers)

    def _record(self, qtype: int, address: str) -> bytes:
        packed = ipaddress.ip_address(address).packed
        rtype = _A if len(packed) == 4 else _AAAA
        if rtype != qtype:
            return b""
        return struct.pack(">HHHLH", 0xC00C, rtype, 1, self.ttl, len(packed)) + packed


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1 : offset + 1 + length].decode().lower())
        offset += 1 + length
    return ".".join(labels), offset + 1
