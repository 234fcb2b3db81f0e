"""What Envoy answers when it produces a response itself, and the deny reason it carries.

Envoy's local replies (a token check, the address check, a refused upgrade, an unreachable upstream) get a
reason from the closed set in docs/SECURITY.md and a short body that says what to do. Routes' own
`direct_response` denials already carry their reason and are left alone: mappers match by response code
details, and those of a direct response are `direct_response`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from control_plane.envoy_contract import (
    DENY_HEADER,
    DESTINATION_IP_FORBIDDEN,
    DESTINATION_LIMIT,
    DESTINATION_LIMIT_DETAILS,
    ERROR_HEADER,
    PROXY_AUTHENTICATE,
    TIMEOUT_DETAILS,
    TOKEN_INVALID,
    UNREACHABLE_DETAILS,
    UPGRADE_NOT_SUPPORTED,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNREACHABLE,
)
from control_plane.xds.builders import TYPE

FORBIDDEN_BODY = (
    "Sandgate denied this request (destination-ip-forbidden): the host resolved to an address no sandbox may "
    "reach (loopback, private, link-local, metadata or this host's own). An operator can change the forbidden "
    "ranges in the control plane's configuration.\n"
)
AUTH_REQUIRED_BODY = (
    "Sandgate: proxy authentication required. Requests must carry this session's token as proxy "
    "credentials (HTTP_PROXY=http://sandgate:TOKEN@127.0.0.1:3128); it is in /run/sandgate/token.\n"
)
UPGRADE_BODY = (
    "Sandgate refused this request (upgrade-not-supported): through the proxy only WebSocket and CONNECT "
    "upgrades are supported.\n"
)
UNREACHABLE_BODY = (
    "Sandgate allowed this request, but could not reach the destination (upstream-unreachable): the name did "
    "not resolve, or the connection was refused or reset.\n"
)
LIMIT_BODY = (
    "Sandgate allowed this request, but the proxy holds as many distinct destinations as it may "
    "(destination-limit); unused ones are released after a while. An operator can raise max_destinations.\n"
)
TIMEOUT_BODY = "Sandgate allowed this request, but the destination did not answer in time (upstream-timeout).\n"


def local_reply_mappers(first: Sequence[tuple[str, str, str]] = ()) -> list[dict[str, Any]]:
    """The HCM's local_reply_config mappers, first match wins. `first`: (CEL condition, deny reason, body) of
    refusals that must be named before any broader mapper could name them otherwise (the limits')."""
    named = [_mapper(expression, DENY_HEADER, reason, body) for expression, reason, body in first]
    return [
        *named,
        _mapper(
            _starts_with("jwt_authn_access_denied"),
            DENY_HEADER, TOKEN_INVALID, AUTH_REQUIRED_BODY, status=407, extra=[_header(*PROXY_AUTHENTICATE)],
        ),
        _mapper(_starts_with("rbac_access_denied"), DENY_HEADER, DESTINATION_IP_FORBIDDEN, FORBIDDEN_BODY),
        _mapper("response.code_details == 'upgrade_failed'", DENY_HEADER, UPGRADE_NOT_SUPPORTED, UPGRADE_BODY),
        _mapper(_starts_with(DESTINATION_LIMIT_DETAILS), ERROR_HEADER, DESTINATION_LIMIT, LIMIT_BODY),
        _mapper(_any_start(UNREACHABLE_DETAILS), ERROR_HEADER, UPSTREAM_UNREACHABLE, UNREACHABLE_BODY),
        _mapper(_any_start(TIMEOUT_DETAILS), ERROR_HEADER, UPSTREAM_TIMEOUT, TIMEOUT_BODY),
    ]  # fmt: skip


def _mapper(
    expression: str, header: str, reason: str, body: str, status: int = 0, extra: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    mapper: dict[str, Any] = {
        "filter": _cel(expression),
        "headers_to_add": [*(extra or []), _header(header, reason)],
        "body": {"inline_string": body},
    }
    if status:
        mapper["status_code"] = status
    return mapper


def _starts_with(prefix: str) -> str:
    return f"response.code_details.startsWith('{prefix}')"


def _any_start(prefixes: tuple[str, ...]) -> str:
    return " || ".join(_starts_with(p) for p in prefixes)


def _cel(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": expression,
            },
        }
    }


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
