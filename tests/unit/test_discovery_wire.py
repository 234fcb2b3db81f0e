"""The ADS server's wire subsets (protos/sandgate/wire/discovery.proto) agree with envoy-data-plane's classes."""

from __future__ import annotations

from envoy_data_plane.envoy.config.core.v3 import Node
from envoy_data_plane.envoy.service.discovery.v3 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from envoy_data_plane.google.rpc import Status

from control_plane.api.gen.sandgate.wire import discovery_pb2 as wire
from control_plane.xds.resource import Resource
from control_plane.xds.snapshot import Snapshot
from control_plane.xds.streams import DeltaStream, SotwStream, rejection
from control_plane.xds.types import CLUSTER, LISTENER


def test_a_delta_request_from_envoy_reads_the_same() -> None:
    sent = DeltaDiscoveryRequest(
        node=Node(id="node-1", cluster="c"), type_url=LISTENER, resource_names_subscribe=["a", "b"],
        resource_names_unsubscribe=["c"], initial_resource_versions={"a": "1"}, response_nonce="7",
        error_detail=Status(code=3, message="bad listener"),
    )  # fmt: skip
    got = wire.DeltaDiscoveryRequest.FromString(bytes(sent))
    assert (got.node.id, got.type_url, list(got.resource_names_subscribe)) == ("node-1", LISTENER, ["a", "b"])
    assert list(got.resource_names_unsubscribe) == ["c"] and dict(got.initial_resource_versions) == {"a": "1"}
    assert got.response_nonce == "7" and rejection(got) == "bad listener"
    assert rejection(wire.DeltaDiscoveryRequest.FromString(bytes(DeltaDiscoveryRequest(response_nonce="8")))) is None


def test_a_sotw_request_from_envoy_reads_the_same() -> None:
    sent = DiscoveryRequest(version_info="v", node=Node(id="n"), resource_names=["r"], type_url=CLUSTER,
                            response_nonce="3", error_detail=Status(message="no"))  # fmt: skip
    got = wire.DiscoveryRequest.FromString(bytes(sent))
    assert (got.version_info, got.node.id, list(got.resource_names), got.type_url) == ("v", "n", ["r"], CLUSTER)
    assert (got.response_nonce, rejection(got)) == ("3", "no")


def test_responses_read_back_in_envoys_classes() -> None:
    listener = Resource(LISTENER, "l", "v1", b"\x0a\x01l")  # Listener{name: "l"}
    delta = DeltaStream(node_id="n")
    delta.on_request(wire.DeltaDiscoveryRequest(node=wire.Node(id="n"), type_url=LISTENER))
    snapshot = Snapshot().changed([listener])
    (response,) = delta.responses(snapshot)
    parsed = DeltaDiscoveryResponse.parse(response.SerializeToString())
    assert (parsed.type_url, parsed.nonce, [r.name for r in parsed.resources]) == (LISTENER, response.nonce, ["l"])
    assert parsed.resources[0].version == "v1" and parsed.resources[0].resource.type_url == LISTENER
    assert parsed.resources[0].resource.value == b"\x0a\x01l"
    sotw = SotwStream(node_id="n")
    sotw.on_request(wire.DiscoveryRequest(node=wire.Node(id="n"), type_url=LISTENER))
    (full,) = sotw.responses(snapshot)
    parsed_full = DiscoveryResponse.parse(full.SerializeToString())
    assert parsed_full.version_info == full.version_info and parsed_full.resources[0].value == b"\x0a\x01l"
