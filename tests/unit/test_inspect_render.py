"""What Envoy gets for inspection: CONNECT to the internal listener, routes that decide and inject, verified TLS."""

from __future__ import annotations

import time

from control_plane.credentials.secret import Injection
from control_plane.domain.rules import parse_rule
from control_plane.domain.session import Limits, Session, State
from control_plane.inspection.ca import issue_leaf, new_session_ca
from control_plane.xds import render
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.inspect import UPSTREAM_TRUST, render_inspect_routes, render_upstream_cluster
from control_plane.xds.builders.route import render_session_routes
from control_plane.xds.serialize import SERIALIZER

SID = "s-0123456789abcdef"
KEY = Injection("Authorization", "Bearer sk-1", "sandgate-placeholder-1")
OTHER = Injection("X-Api-Key", "k-2", "sandgate-placeholder-2")


def _routes_of(config: dict[str, object], vhost_prefix: str) -> list[dict[str, object]]:
    vhosts = config["virtual_hosts"]
    assert isinstance(vhosts, list)
    return next(v["routes"] for v in vhosts if v["name"].startswith(vhost_prefix))


def test_an_inspected_connect_goes_to_the_internal_listener_and_an_opaque_limited_one_is_refused() -> None:
    rules = (parse_rule("api.test", [443], ["GET"], inspect=True), parse_rule("plain.test", [443], ["GET"]))
    config = render_session_routes(SID, rules)
    api, plain = _routes_of(config, "allow-0-api.test"), _routes_of(config, "allow-1-plain.test")
    assert api[0]["route"]["cluster"] == f"inspect-session-{SID}"  # type: ignore[index]
    assert plain[0]["name"] == "deny:tunnel-not-inspectable"


def test_inner_routes_inject_the_rules_credential_and_refuse_other_placeholders() -> None:
    rules = (
        parse_rule("api.test", [443], inspect=True, credential="key"),
        parse_rule("b.test", [443], inspect=True, credential="other"),
    )
    config = render_inspect_routes(SID, rules, {"key": KEY, "other": OTHER})
    api = _routes_of(config, "inspect-0-api.test-443")
    guards = [r for r in api if r["name"] == "deny:credential-host-mismatch"]
    assert [r["match"]["headers"][0]["name"] for r in guards] == ["X-Api-Key", ":path"]  # type: ignore[index]
    allow = next(r for r in api if str(r["name"]).startswith("allow:"))
    assert allow["name"] == "allow:api.test#credential:key"
    assert allow["request_headers_to_add"] == [
        {"header": {"key": "Authorization", "value": "Bearer sk-1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    ]
    assert _routes_of(config, "deny")[0]["name"] == "deny:host-not-allowed"


def test_upstream_tls_is_verified_with_sni_and_names() -> None:
    cluster = render_upstream_cluster(SID, "api.test", 8443, EgressSettings())
    assert cluster["name"] == f"inspect-session-{SID}-api.test-8443" and cluster["type"] == "STRICT_DNS"
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "api.test"
    validation = tls["common_tls_context"]["combined_validation_context"]
    assert validation["default_validation_context"] == {
        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "api.test"}}]
    }
    assert validation["validation_context_sds_secret_config"]["name"] == UPSTREAM_TRUST
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["http_filters"][0]["name"] == "sandgate.forbidden-destinations"


def test_inspection_resources_build_and_reference_their_leaves() -> None:
    now = time.time()
    session = Session(id=SID, state=State.READY, node_id="n", image="i", created_at=now, expires_at=now + 60,
                      egress=(), limits=Limits(256, 1.0, 64))  # fmt: skip
    rules = (parse_rule("api.test", [443], inspect=True), parse_rule("plain.test", [443]))
    ca = new_session_ca(SID, ["api.test"], now + 60, now)
    resources = render.inspect_resources(session, rules, {"api.test": issue_leaf(ca, "api.test", now + 60, now)},
                                         {}, EgressSettings())  # fmt: skip
    names = [r.name for r in resources]
    assert names == [f"inspect-session-{SID}", f"inspect-session-{SID}-api.test-443", f"leaf-{SID}-api.test",
                     f"inspect-session-{SID}", f"inspect-session-{SID}"]  # fmt: skip
    assert render.inspect_resources(session, rules[1:], {}, {}, EgressSettings()) == []


class _Store:
    """A rendered-config store that remembers what it was given."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.bodies.get(key)

    def put(self, key: str, body: bytes) -> None:
        self.bodies[key] = body

    def close(self) -> None:
        pass


def test_a_leaf_key_and_an_injected_value_never_reach_the_rendered_config_store() -> None:
    now, sid = time.time(), "s-00000000000000aa"  # its public configs are new: the store is given them
    session = Session(id=sid, state=State.READY, node_id="n", image="i", created_at=now, expires_at=now + 60,
                      egress=(), limits=Limits(256, 1.0, 64))  # fmt: skip
    rules = (parse_rule("api.test", [443], inspect=True, credential="key"),)
    leaf = issue_leaf(new_session_ca(sid, ["api.test"], now + 60, now), "api.test", now + 60, now)
    store = _Store()
    SERIALIZER.attach(store)
    try:
        resources = render.inspect_resources(session, rules, {"api.test": leaf}, {"key": KEY}, EgressSettings())
    finally:
        SERIALIZER.detach()
    stored = b"".join(store.bodies.values())
    assert store.bodies and leaf.key_pem.strip() not in stored and KEY.value.encode() not in stored
    sent = b"".join(r.body for r in resources)  # Envoy still gets both
    assert leaf.key_pem.strip() in sent and KEY.value.encode() in sent


def test_a_catch_all_that_forwards_refuses_placeholders_too() -> None:
    rules = (parse_rule("api.test", [443], inspect=True, credential="key"),)
    for forwarding in ({"ask": True}, {"report_only": True}):
        fallback = _routes_of(render_session_routes(SID, rules, injections=(KEY,), **forwarding), "deny")
        assert fallback[0]["name"] == "deny:credential-host-mismatch", forwarding
    refusing = _routes_of(render_session_routes(SID, rules, injections=(KEY,)), "deny")
    assert all(r["name"] == "deny:host-not-allowed" for r in refusing)
