"""A rendered xDS resource: its serialized bytes and a content-hash version."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from control_plane.xds.serialize import SERIALIZER
from control_plane.xds.types import ROUTE, VIRTUAL_HOST


@dataclass(frozen=True)
class Resource:
    type_url: str
    name: str
    version: str
    body: bytes
    references: tuple[tuple[str, str], ...] = ()  # (type url, name) of what a listener needs


def build(
    type_url: str, config: dict[str, Any], references: tuple[tuple[str, str], ...] = (), private: bool = False
) -> Resource:
    """An Envoy config mapping (proto3 JSON names) of message `type_url`, serialized (or remembered) once;
    `private` for one that holds a secret (never written to the rendered-config store)."""
    body = SERIALIZER.serialize(type_url, config, private)
    return Resource(type_url, str(config["name"]), content_version(body), body, references)


def content_version(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def build_routes(config: dict[str, Any]) -> Resource:
    """A RouteConfiguration from serialized virtual hosts: a rule edit serializes only the hosts it changed.

    On the wire a RouteConfiguration of `name` (1), `virtual_hosts` (2) and `request_headers_to_remove` (8)
    is those fields in a row, in that order.
    """
    body = _field(1, str(config["name"]).encode())
    body += b"".join(_field(2, SERIALIZER.serialize(VIRTUAL_HOST, vh)) for vh in config["virtual_hosts"])
    body += b"".join(_field(8, str(h).encode()) for h in config.get("request_headers_to_remove", ()))
    return Resource(ROUTE, str(config["name"]), content_version(body), body)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
