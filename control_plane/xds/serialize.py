"""Envoy config mappings (proto3 JSON names) to protobuf bytes, remembered by content. Pure but for the
optional `RenderedStore` it is given (`xds/rendered_store.py` keeps one in the state directory).

Serializing goes through envoy-data-plane's generated classes, whose import and first use cost seconds of
CPU (pydantic builds a schema for each of hundreds of classes). A restarted control plane renders the same
configs it rendered before, so the bytes are remembered by the content of the mapping, in memory and in the
store: a restart serializes (and imports) nothing it has serialized before, and the classes are only
imported for a config never seen. The store is a cache: losing it costs time, not data. A config that holds
a secret (an inspection leaf's private key, an injected credential) is `private`: it is never written to the
store, nor read from it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Protocol

_MEMORY_LIMIT = 50_000  # mappings kept in memory; beyond this the memory is cleared (the store still holds them)


class RenderedStore(Protocol):
    """Serialized configs by key, kept across restarts."""

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, body: bytes) -> None: ...
    def close(self) -> None: ...


class Serializer:
    """`serialize(type_url, config)` returns the bytes of the message; thread-safe."""

    def __init__(self) -> None:
        self._memory: dict[str, bytes] = {}
        self._store: RenderedStore | None = None
        self._lock = threading.Lock()

    def attach(self, store: RenderedStore) -> None:
        """Remember serialized configs in `store` too (a previous store is closed)."""
        with self._lock:
            previous, self._store = self._store, store
        if previous is not None:
            previous.close()

    def detach(self) -> None:
        with self._lock:
            previous, self._store = self._store, None
        if previous is not None:
            previous.close()

    def serialize(self, type_url: str, config: dict[str, Any], private: bool = False) -> bytes:
        """The message's bytes; with `private`, remembered in memory only."""
        key = hashlib.sha256(f"{type_url}\n{json.dumps(config, sort_keys=True)}".encode()).hexdigest()
        with self._lock:
            found = self._memory.get(key)
            store = None if private else self._store
            if found is None and store is not None:
                found = store.get(key)
        if found is None:
            found = bytes(message_class(type_url).from_dict(config))
            with self._lock:
                if store is not None and store is self._store:
                    store.put(key, found)
        with self._lock:
            if len(self._memory) >= _MEMORY_LIMIT:
                self._memory.clear()
            self._memory[key] = found
        return found


def message_class(type_url: str) -> Any:
    """envoy-data-plane's generated class for `type_url` (imports every module we pack into Any)."""
    from envoy_data_plane.message_pool import default_message_pool

    from control_plane.xds.types import register_message_types

    register_message_types()
    return default_message_pool.url_to_type[type_url]


SERIALIZER = Serializer()  # one per process: the bytes depend only on the mapping, whichever App asks
