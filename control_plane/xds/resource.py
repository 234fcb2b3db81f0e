"""A rendered xDS resource: its serialized bytes and a content-hash version."""

from __future__ import annotations

import hashlib
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
