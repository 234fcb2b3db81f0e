"""Which verdict and reason a logged request had: table-driven, reason asserted with the verdict."""

from __future__ import annotations

import pytest

from control_plane.audit.entries import LoggedRequest, verdict


def logged(code: int, details: str, route: str, method: str = "GET") -> LoggedRequest:
    return LoggedRequest("/s/abc/proxy.sock", method, "allowed.test", code, details, route, "", 0, 0, 0.0, 0.0)


CASES = [
    # what Envoy produced                                                      expected
    (200, "via_upstream", "allow:allowed.test", ("allow", "allowed")),
    (500, "via_upstream", "allow:allowed.test", ("allow", "allowed")),  # the upstream's own 500
    (0, "downstream_remote_disconnect", "allow:allowed.test", ("allow", "allowed")),  # the client left
    (503, "upstream_reset_before_response_started{x}", "allow:a", ("error", "upstream-unreachable")),
    (503, "no_healthy_upstream", "allow:a", ("error", "upstream-unreachable")),
    (503, "sub_cluster_overflow", "allow:a", ("error", "destination-limit")),
    (504, "upstream_response_timeout", "allow:a", ("error", "upstream-timeout")),
    (403, "upgrade_failed", "allow:a", ("deny", "upgrade-not-supported")),
    (429, "local_rate_limited", "allow:a", ("deny", "rate-limited")),
    (408, "request_overall_timeout", "allow:a", ("deny", "bad-request")),
    (403, "direct_response", "deny:tunnel-not-inspectable", ("deny", "tunnel-not-inspectable")),
    (403, "rbac_access_denied_matched_policy[forbidden-destinations]", "allow:a", ("deny", "destination-ip-forbidden")),
    (407, "jwt_authn_access_denied{Jwt is missing}", "", ("deny", "token-invalid")),
    (426, "low_version", "", ("deny", "bad-request")),
    (503, "no_healthy_upstream", "would-deny:host-not-allowed", ("would_deny", "host-not-allowed")),
]  # fmt: skip


@pytest.mark.parametrize(("code", "details", "route", "expected"), CASES)
def test_verdict(code: int, details: str, route: str, expected: tuple[str, str]) -> None:
    assert verdict(logged(code, details, route)) == expected


def test_nothing_envoy_answered_itself_is_an_allow() -> None:
    for code, details, route, _ in CASES:
        if details not in {"via_upstream", "downstream_remote_disconnect"}:
            assert verdict(logged(code, details, route))[0] != "allow", details
