"""A rendered xDS resource: its serialized bytes and a content-hash version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import betterproto2
from envoy_data_plane.message_pool import default_message_pool


@dataclass(frozen=True)
class Resource:
    type_url: str
    name: str
    version: str
    body: bytes
    references: tuple[tuple[str, str], ...] = ()  # (type url, name) of what a listener needs


def build(
    message_type: type[betterproto2.Message], config: dict[str, Any], references: tuple[tuple[str, str], ...] = ()
) -> Resource:
    """Parse an Envoy config mapping (proto3 JSON names) into the typed message and serialize it once."""
    message = message_type.from_dict(config)
    body = bytes(message)
    type_url = default_message_pool.type_to_url[message_type]
    return Resource(type_url, str(config["name"]), content_version(body), body, references)


def content_version(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def build_routes(config: dict[str, Any], virtual_host: type[betterproto2.Message], cache: VirtualHostCache) -> Resource:
    """A RouteConfiguration from serialized virtual hosts: a rule edit serializes only the hosts it changed.

    On the wire a RouteConfiguration of `name` (1), `virtual_hosts` (2) and `request_headers_to_remove` (8)
    is those fields in a row, in that order.
    """
    body = _field(1, str(config["name"]).encode())
    body += b"".join(_field(2, cache.serialize(virtual_host, vh)) for vh in config["virtual_hosts"])
    body += b"".join(_field(8, str(h).encode()) for h in config.get("request_headers_to_remove", ()))
    type_url = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    return Resource(type_url, str(config["name"]), content_version(body), body)


class VirtualHostCache:
    """Serialized virtual hosts by content, bounded."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._bytes: dict[str, bytes] = {}

    def serialize(self, message_type: type[betterproto2.Message], config: dict[str, Any]) -> bytes:
        key = json.dumps(config, sort_keys=True)
        found = self._bytes.get(key)
        if found is None:
            if len(self._bytes) >= self._size:
                self._bytes.clear()
            found = self._bytes[key] = bytes(message_type.from_dict(config))
        return found


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
