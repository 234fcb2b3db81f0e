"""Per-stream xDS protocol state for State-of-the-World and Delta ADS. No I/O: requests in, responses out.

Requests and responses are the wire subsets of protos/sandgate/wire/discovery.proto (Envoy's field numbers).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from google.protobuf.any_pb2 import Any as AnyMessage

from control_plane.api.gen.sandgate.wire.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from control_plane.api.gen.sandgate.wire.discovery_pb2 import Resource as WireResource
from control_plane.xds.cache import StreamView
from control_plane.xds.resource import Resource
from control_plane.xds.snapshot import Snapshot
from control_plane.xds.types import PUSH_ORDER, WILDCARD_TYPES

_nonces = itertools.count(1)


def _nonce() -> str:
    return str(next(_nonces))


@dataclass
class _Sent:
    """One response awaiting its ACK."""

    type_url: str
    versions: dict[str, str]  # what this response sends
    removed: list[str]
    # What Envoy already held at these versions when the response was sent (its initial_resource_versions
    # after a reconnect): an ACK confirms them too, or a reconnected Envoy that needs nothing new would
    # never count as having applied the config.
    held: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class DeltaStream(StreamView):
    wildcard: set[str] = field(default_factory=set)
    subscribed: dict[str, set[str]] = field(default_factory=dict)
    known: dict[str, dict[str, str]] = field(default_factory=dict)
    inflight: dict[str, _Sent] = field(default_factory=dict)
    must_answer: set[str] = field(default_factory=set)

    def wants(self, type_url: str, name: str) -> bool:
        return type_url in self.wildcard or name in self.subscribed.get(type_url, ())

    def on_request(self, req: DeltaDiscoveryRequest) -> None:
        t = req.type_url
        if req.response_nonce:
            self._settle(req.response_nonce, rejection(req))
        if t not in self.known:  # first request of this type on this stream
            self.known[t] = dict(req.initial_resource_versions)
            self.must_answer.add(t)
            if t in WILDCARD_TYPES and not req.resource_names_subscribe:
                self.wildcard.add(t)
        names = self.subscribed.setdefault(t, set())
        for name in req.resource_names_subscribe:
            if name == "*":
                self.wildcard.add(t)
            else:
                names.add(name)
        for name in req.resource_names_unsubscribe:
            self.wildcard.discard(t) if name == "*" else names.discard(name)
            self.known[t].pop(name, None)

    def _settle(self, nonce: str, error: str | None) -> None:
        sent = self.inflight.pop(nonce, None)
        if sent is None:
            return  # stale or unknown nonce: nothing to confirm
        for name, version in sent.versions.items():
            key = (sent.type_url, name)
            if error is None:
                self.acked[key] = version
                self.nacked.pop(key, None)
            else:
                self.nacked[key] = (version, error)
        if error is None:
            for name, version in sent.held.items():
                self.acked[(sent.type_url, name)] = version
            for name in sent.removed:
                self.acked.pop((sent.type_url, name), None)

    def responses(self, snapshot: Snapshot) -> Iterator[DeltaDiscoveryResponse]:
        for t in PUSH_ORDER:
            if t in self.known:
                response = self._diff(t, snapshot.of_type(t))
                if response is not None:
                    yield response

    def _diff(self, t: str, available: Mapping[str, Resource]) -> DeltaDiscoveryResponse | None:
        wanted = available if t in self.wildcard else {n: available[n] for n in self.subscribed[t] if n in available}
        known = self.known[t]
        changed = [r for name, r in wanted.items() if known.get(name) != r.version]
        first = t in self.must_answer  # `known` is still Envoy's initial_resource_versions
        held = {name: r.version for name, r in wanted.items() if first and known.get(name) == r.version}
        removed = [name for name in known if name not in wanted]
        if not changed and not removed and not first:
            return None
        self.must_answer.discard(t)
        for r in changed:
            known[r.name] = r.version
        for name in removed:
            del known[name]
        nonce = _nonce()
        self.inflight[nonce] = _Sent(t, {r.name: r.version for r in changed}, removed, held)
        return DeltaDiscoveryResponse(
            type_url=t,
            nonce=nonce,
            system_version_info=str(len(self.inflight)),
            resources=[_wire(r) for r in changed],
            removed_resources=removed,
        )


@dataclass(eq=False)
class SotwStream(StreamView):
    names: dict[str, set[str]] = field(default_factory=dict)
    last_nonce: dict[str, str] = field(default_factory=dict)
    last_version: dict[str, str] = field(default_factory=dict)
    last_sent: dict[str, dict[str, str]] = field(default_factory=dict)
    must_answer: set[str] = field(default_factory=set)

    def wants(self, type_url: str, name: str) -> bool:
        if type_url not in self.names:
            return False
        return not self.names[type_url] if type_url in WILDCARD_TYPES else name in self.names[type_url]

    def on_request(self, req: DiscoveryRequest) -> None:
        t = req.type_url
        if req.response_nonce and req.response_nonce != self.last_nonce.get(t):
            return  # stale: superseded by a newer response
        if req.response_nonce:
            self._settle(t, rejection(req))
        names = set(req.resource_names) - {"*"}
        wildcard = t in WILDCARD_TYPES and not names
        if t not in self.names or (not wildcard and names != self.names[t]):
            self.must_answer.add(t)
        self.names[t] = names if not wildcard else set()

    def _settle(self, t: str, error: str | None) -> None:
        sent = self.last_sent.get(t, {})
        if error is not None:
            for name, version in sent.items():
                self.nacked[(t, name)] = (version, error)
            return
        for key in [k for k in self.acked if k[0] == t and k[1] not in sent]:
            del self.acked[key]
        for name, version in sent.items():
            self.acked[(t, name)] = version
            self.nacked.pop((t, name), None)

    def responses(self, snapshot: Snapshot) -> Iterator[DiscoveryResponse]:
        for t in PUSH_ORDER:
            if t in self.names:
                response = self._full(t, snapshot.of_type(t))
                if response is not None:
                    yield response

    def _full(self, t: str, available: Mapping[str, Resource]) -> DiscoveryResponse | None:
        names = self.names[t]
        wanted = [available[n] for n in sorted(names) if n in available] if names else list(available.values())
        version = _set_version(wanted)
        if version == self.last_version.get(t) and t not in self.must_answer:
            return None
        self.must_answer.discard(t)
        nonce = _nonce()
        self.last_nonce[t], self.last_version[t] = nonce, version
        self.last_sent[t] = {r.name: r.version for r in wanted}
        return DiscoveryResponse(type_url=t, nonce=nonce, version_info=version, resources=[_any(r) for r in wanted])


def rejection(req: DiscoveryRequest | DeltaDiscoveryRequest) -> str | None:
    """Envoy's reason when the request NACKs the response it names (an `error_detail` is set), else None."""
    if not req.HasField("error_detail"):
        return None
    return req.error_detail.message or f"rejected (code {req.error_detail.code})"


def _set_version(resources: list[Resource]) -> str:
    digest = hashlib.sha256()
    for r in sorted(resources, key=lambda r: r.name):
        digest.update(f"{r.name}={r.version};".encode())
    return digest.hexdigest()[:16]


def _any(r: Resource) -> AnyMessage:
    return AnyMessage(type_url=r.type_url, value=r.body)


def _wire(r: Resource) -> WireResource:
    return WireResource(name=r.name, version=r.version, resource=_any(r))
