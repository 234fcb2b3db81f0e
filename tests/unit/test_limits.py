"""Each refusal Envoy answers itself at a limit carries the reason the decision log records for it."""

from __future__ import annotations

import re

import pytest

from control_plane.audit.entries import LoggedRequest, verdict
from control_plane.envoy_contract import REASONS
from control_plane.xds.builders.limits import TenantLimits, limit_refusals

# Response code details as Envoy 1.40 writes them for each limit (seen in the e2e tests' access logs).
DETAILS = {
    "local_rate_limited": "rate-limited",
    "ext_authz_error": "authz-unavailable",
    "overload": "proxy-overloaded",
    "upstream_reset_before_response_started{overflow}": "upstream-overflow",
}


def matches(expression: str, details: str) -> bool:
    """The three shapes of CEL condition `limit_refusals` uses, on `response.code_details`."""
    op, literal = re.fullmatch(r"response\.code_details(?: == |\.(\w+)\()'(.*)'\)?", expression).groups()  # type: ignore[union-attr]
    return {None: details == literal, "startsWith": details.startswith(literal),
            "endsWith": details.endswith(literal)}[op]  # fmt: skip


@pytest.mark.parametrize(("details", "reason"), DETAILS.items())
def test_the_answer_and_the_log_name_the_same_limit(details: str, reason: str) -> None:
    named = [r for expression, r, _ in limit_refusals(TenantLimits()) if matches(expression, details)]
    assert named[:1] == [reason]  # the first mapper that matches wins
    logged = LoggedRequest("/s/s-1/proxy.sock", "CONNECT", "a.test:443", 429, details, "allow:a.test", "", 0, 0, 0, 0)
    assert verdict(logged) == ("deny", reason)  # never the allow route Envoy had chosen
    assert reason in REASONS


def test_every_refusal_is_covered() -> None:
    assert sorted(reason for _, reason, _ in limit_refusals(TenantLimits())) == sorted(DETAILS.values())
