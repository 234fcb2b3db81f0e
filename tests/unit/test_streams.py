"""xDS protocol state: what each stream sends, and how ACKs, NACKs and stale nonces are recorded."""

from __future__ import annotations

import pytest

from control_plane.api.gen.sandgate.wire.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest, Node, Status
from control_plane.xds.resource import Resource
from control_plane.xds.snapshot import InconsistentSnapshot, Snapshot
from control_plane.xds.streams import DeltaStream, SotwStream
from control_plane.xds.types import CLUSTER, LISTENER, ROUTE


def res(type_url: str, name: str, version: str, refs: tuple[str, ...] = ()) -> Resource:
    return Resource(type_url, name, version, b"", tuple((ROUTE, r) for r in refs))


BASE = Snapshot().changed([res(CLUSTER, "c", "c1"), res(ROUTE, "r", "r1"), res(LISTENER, "l", "l1", ("r",))])


def test_snapshot_refuses_a_listener_without_its_route() -> None:
    with pytest.raises(InconsistentSnapshot, match="missing resources"):
        Snapshot().changed([res(LISTENER, "l", "v", ("r",))])
    with pytest.raises(InconsistentSnapshot):
        BASE.changed(removals=[(ROUTE, "r")])


def test_delta_sends_only_changes_and_records_acks() -> None:
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(node=Node(id="n"), type_url=LISTENER))
    s.on_request(DeltaDiscoveryRequest(type_url=ROUTE, resource_names_subscribe=["r"]))
    first = list(s.responses(BASE))
    assert [(r.type_url, [x.name for x in r.resources]) for r in first] == [(LISTENER, ["l"]), (ROUTE, ["r"])]
    assert list(s.responses(BASE)) == []  # nothing changed, nothing sent
    for r in first:
        s.on_request(DeltaDiscoveryRequest(type_url=r.type_url, response_nonce=r.nonce))
    assert s.acked == {(LISTENER, "l"): "l1", (ROUTE, "r"): "r1"}
    changed = BASE.changed([res(ROUTE, "r", "r2")])
    (update,) = s.responses(changed)
    assert [(x.name, x.version) for x in update.resources] == [("r", "r2")]


def test_a_reconnected_envoy_that_holds_the_current_config_counts_as_applied_once_it_acks() -> None:
    """After a control-plane restart, Envoy reconnects with initial_resource_versions equal to the snapshot:
    the answer sends nothing, and its ACK confirms what Envoy holds (else /readyz would wait for an edit)."""
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, initial_resource_versions={"l": "l1"}))
    (answer,) = s.responses(BASE)
    assert list(answer.resources) == [] and s.acked == {}
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=answer.nonce))
    assert s.acked == {(LISTENER, "l"): "l1"}


def test_only_the_first_answer_confirms_what_envoy_held() -> None:
    """A later ACK never confirms a version that was sent before and NACKed."""
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(type_url=CLUSTER, initial_resource_versions={"c": "c0"}))
    (push,) = s.responses(BASE)
    s.on_request(DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=push.nonce, error_detail=Status(message="no")))
    (other,) = s.responses(BASE.changed([res(CLUSTER, "d", "d1")]))
    s.on_request(DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=other.nonce))
    assert s.acked == {(CLUSTER, "d"): "d1"} and s.nacked[(CLUSTER, "c")] == ("c1", "no")


def test_delta_removal_and_nack() -> None:
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER))
    (first,) = s.responses(BASE)
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=first.nonce))
    gone = BASE.changed(removals=[(LISTENER, "l")])
    (removal,) = s.responses(gone)
    assert removal.removed_resources == ["l"]
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=removal.nonce))
    assert (LISTENER, "l") not in s.acked
    bad = gone.changed([res(LISTENER, "l", "bad", ("r",))])
    (push,) = s.responses(bad)
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=push.nonce, error_detail=Status(message="no")))
    assert s.nacked[(LISTENER, "l")] == ("bad", "no")
    assert list(s.responses(bad)) == []  # a rejected version is not resent in a loop


def test_delta_reconnect_with_initial_versions_sends_only_differences() -> None:
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(type_url=LISTENER, initial_resource_versions={"l": "l1", "old": "x"}))
    (r,) = s.responses(BASE)
    assert r.resources == [] and r.removed_resources == ["old"]


def test_sotw_sends_full_state_and_ignores_stale_nonces() -> None:
    s = SotwStream(node_id="n")
    s.on_request(DiscoveryRequest(node=Node(id="n"), type_url=LISTENER))
    (first,) = s.responses(BASE)
    changed = BASE.changed([res(LISTENER, "l2", "x", ("r",))])
    (second,) = s.responses(changed)
    assert sorted(a.type_url for a in second.resources) == [LISTENER, LISTENER]
    s.on_request(DiscoveryRequest(type_url=LISTENER, response_nonce=first.nonce, version_info=first.version_info))
    assert s.acked == {}  # stale: a newer response is outstanding
    s.on_request(DiscoveryRequest(type_url=LISTENER, response_nonce=second.nonce, version_info=second.version_info))
    assert s.acked == {(LISTENER, "l"): "l1", (LISTENER, "l2"): "x"}


def test_sotw_nack_keeps_last_ack() -> None:
    s = SotwStream(node_id="n")
    s.on_request(DiscoveryRequest(type_url=ROUTE, resource_names=["r"]))
    (first,) = s.responses(BASE)
    s.on_request(DiscoveryRequest(type_url=ROUTE, resource_names=["r"], response_nonce=first.nonce))
    bad = BASE.changed([res(ROUTE, "r", "r9")])
    (push,) = s.responses(bad)
    s.on_request(
        DiscoveryRequest(
            type_url=ROUTE, resource_names=["r"], response_nonce=push.nonce, error_detail=Status(message="x")
        )
    )
    assert s.acked[(ROUTE, "r")] == "r1" and s.nacked[(ROUTE, "r")] == ("r9", "x")


async def test_readiness_counts_only_what_a_stream_subscribes_to() -> None:
    from control_plane.xds.cache import SnapshotCache
    from control_plane.xds.types import FILTER_CONFIG

    cache = SnapshotCache()
    cache.publish("n", [res(CLUSTER, "c", "c1"), res(FILTER_CONFIG, "shared", "f1")])
    s = DeltaStream(node_id="n")
    s.on_request(DeltaDiscoveryRequest(type_url=CLUSTER))
    await cache.attach(s)
    assert not cache.in_sync("n")
    (push,) = s.responses(cache.snapshot("n"))
    s.on_request(DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=push.nonce))
    assert cache.in_sync("n")  # the shared filter config is not wanted until a listener uses it


def test_routes_from_cached_virtual_hosts_match_the_generated_class() -> None:
    from envoy_data_plane.envoy.config.route.v3 import RouteConfiguration

    from control_plane.domain.policy import Policy
    from control_plane.domain.rules import EgressRule
    from control_plane.domain.session import Limits, Session, State
    from control_plane.xds import render
    from control_plane.xds.builders.route import render_session_routes

    rules = (EgressRule("a.test"), EgressRule("*.b.test", (443,), ("GET",)))
    session = Session("s-00000000000000ab", State.READY, "n", "i", 0, 1, rules, Limits(64, 1, 512))
    policy = Policy(deny=("evil.test",))
    fast = render.session_routes(session, policy)
    slow = bytes(RouteConfiguration.from_dict(render_session_routes(session.id, rules, policy.deny)))
    assert fast.body == slow
    assert RouteConfiguration.parse(fast.body).virtual_hosts[1].domains == ["*.b.test:443"]
