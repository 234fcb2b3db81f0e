"""ext_authz: the wire reader agrees with the generated CheckRequest class, and the check fails closed."""

from __future__ import annotations

import asyncio

from envoy_data_plane.envoy.config.core.v3 import Metadata
from envoy_data_plane.envoy.service.auth.v3 import (
    AttributeContext,
    AttributeContextHttpRequest,
    AttributeContextRequest,
    CheckRequest,
    CheckResponse,
)
from envoy_data_plane.google.protobuf import Struct

from control_plane.authz import decide as d
from control_plane.authz.check_wire import check_input
from control_plane.authz.service import AuthorizationService
from control_plane.domain.rules import EgressRule


def request(claims: dict[str, object]) -> bytes:
    metadata = Metadata(filter_metadata={"envoy.filters.http.jwt_authn": Struct.from_dict({"jwt_payload": claims})})
    attrs = AttributeContext(
        request=AttributeContextRequest(http=AttributeContextHttpRequest(method="CONNECT", host="ok.test:443")),
        context_extensions={"session_id": "s-1", "rule": "ok.test"},
        metadata_context=metadata,
    )
    return bytes(CheckRequest(attributes=attrs))


def test_reads_session_destination_and_claims() -> None:
    got = check_input(request({"sid": "s-1", "jti": "j", "exp": 123, "aud": "s-1"}))
    assert (got.session_id, got.method, got.authority) == ("s-1", "CONNECT", "ok.test:443")
    assert got.claims["sid"] == "s-1" and got.claims["jti"] == "j"


def test_check_allows_and_denies_with_reason() -> None:
    view = d.SessionView("s-1", True, "j", (EgressRule("ok.test", (443,)),))
    service = AuthorizationService(lambda sid: view if sid == "s-1" else None)
    allowed = CheckResponse.parse(asyncio.run(service.check(request({"sid": "s-1", "jti": "j"}), None)))
    revoked = CheckResponse.parse(asyncio.run(service.check(request({"sid": "s-1", "jti": "old"}), None)))
    assert allowed.status.code == 0
    assert revoked.status.code != 0 and revoked.denied_response.status.code == 407
    assert revoked.denied_response.headers[0].header.value == "token-revoked"


def test_garbage_fails_closed() -> None:
    service = AuthorizationService(lambda sid: None)
    response = CheckResponse.parse(asyncio.run(service.check(b"\xff\xff\xff", None)))
    assert response.status.code != 0 and response.denied_response.headers[0].header.value == "internal-error"


def test_a_host_that_is_not_utf8_is_denied_as_a_host() -> None:
    view = d.SessionView("s-1", True, "j", (EgressRule("ok.test", (443,)),))
    service = AuthorizationService(lambda sid: view if sid == "s-1" else None)
    raw = request({"sid": "s-1", "jti": "j"}).replace(b"ok.test:443", b"o\xff.test:443")
    response = CheckResponse.parse(asyncio.run(service.check(raw, None)))
    assert response.denied_response.headers[0].header.value == "host-not-allowed"


def test_a_host_the_global_policy_denies_is_never_allowed_by_a_sessions_rule() -> None:
    """Envoy's routes refuse it first; a spelling that reaches the check instead is refused here too."""
    view = d.SessionView("s-1", True, "j", (EgressRule("ok.test", (443,)),))
    service = AuthorizationService(lambda sid: view, denied={"ok.test"}.__contains__)
    response = CheckResponse.parse(asyncio.run(service.check(request({"sid": "s-1", "jti": "j"}), None)))
    assert response.denied_response.headers[0].header.value == "destination-denied-by-policy"
