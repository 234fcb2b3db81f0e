"""The SDK's pure parts: rule parsing, error mapping, path encoding, and finding addresses and tokens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

import sandgate as sdk
from sandgate import errors
from sandgate._portal import Portal
from sandgate._transport import path
from sandgate.discovery import discover


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("pypi.org", sdk.EgressRule("pypi.org")),
        ("*.github.com:443", sdk.EgressRule("*.github.com", (443,))),
        ("api.test:80,8080", sdk.EgressRule("api.test", (80, 8080))),
    ],
)
def test_allow_strings_parse_as_the_cli_does(text: str, rule: sdk.EgressRule) -> None:
    assert sdk.EgressRule.parse(text) == rule


def test_a_bad_port_names_allow() -> None:
    with pytest.raises(sdk.InvalidArgument) as raised:
        sdk.EgressRule.parse("pypi.org:https")
    assert raised.value.field == "allow"


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "kind", "field", "message"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "egress[0].host: must not be empty", sdk.InvalidArgument,
         "egress[0].host", "must not be empty"),
        (grpc.StatusCode.NOT_FOUND, "session s-1: gone", sdk.NotFound, "", "session s-1: gone"),
        (grpc.StatusCode.FAILED_PRECONDITION, "not READY", sdk.FailedPrecondition, "", "not READY"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "full", sdk.ResourceExhausted, "", "full"),
        (grpc.StatusCode.UNAVAILABLE, "down", sdk.Unavailable, "", "down"),
        (grpc.StatusCode.UNAUTHENTICATED, "token", sdk.Unauthenticated, "", "token"),
        (grpc.StatusCode.INTERNAL, "bug", sdk.InternalError, "", "bug"),
    ],
)  # fmt: skip
def test_grpc_errors_become_typed_exceptions(
    code: grpc.StatusCode, details: str, kind: type[sdk.SandgateError], field: str, message: str
) -> None:
    exc = errors.from_grpc(FakeRpcError(code, details))
    assert type(exc) is kind
    assert (exc.field, exc.message, exc.grpc_code) == (field, message, code.name)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, sdk.InvalidArgument), (401, sdk.Unauthenticated), (404, sdk.NotFound), (409, sdk.FailedPrecondition),
     (413, sdk.PayloadTooLarge), (504, sdk.DeadlineExceeded), (500, sdk.InternalError)],
)  # fmt: skip
def test_http_errors_become_typed_exceptions(status: int, kind: type[sdk.SandgateError]) -> None:
    body = json.dumps({"error": {"code": "x", "message": "what went wrong", "field": "host"}}).encode()
    exc = errors.from_http(status, body)
    assert type(exc) is kind
    assert (exc.field, exc.message, exc.http_status, str(exc)) == (
        "host",
        "what went wrong",
        status,
        "host: what went wrong",
    )


def test_an_http_error_without_a_json_body_keeps_its_text() -> None:
    exc = errors.from_http(502, b"Bad Gateway")
    assert type(exc) is sdk.InternalError and exc.message == "Bad Gateway" and exc.field == ""


def test_path_segments_are_encoded() -> None:
    assert path("sessions", "s-1", "egress", "10.0.0.0/30") == "/v1/sessions/s-1/egress/10.0.0.0%2F30"
    assert path("sessions", "s-1", "egress", "*.github.com") == "/v1/sessions/s-1/egress/%2A.github.com"


def test_tokens_come_from_the_state_dir_when_not_set(tmp_path: Path) -> None:
    (tmp_path / "api-token").write_text("from-file\n")
    environ = {"SANDGATE_STATE_DIR": str(tmp_path), "SANDGATE_GRPC_ADDR": "127.0.0.1:6000"}
    found = discover(environ=environ)
    assert (found.grpc_addr, found.admin_addr, found.sessions_token()) == (
        "127.0.0.1:6000",
        "127.0.0.1:8081",
        "from-file",
    )
    with pytest.raises(sdk.ConfigurationError) as raised:
        found.admin_bearer()
    assert "SANDGATE_ADMIN_TOKEN" in str(raised.value) and str(tmp_path / "admin-token") in str(raised.value)


def test_arguments_beat_the_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sandgate.toml"
    config.write_text(f'grpc_addr = "127.0.0.1:7000"\nadmin_addr = "127.0.0.1:7001"\nstate_dir = "{tmp_path}"\n')
    environ = {"SANDGATE_CONFIG": str(config), "SANDGATE_ADMIN_ADDR": "127.0.0.1:7002", "SANDGATE_API_TOKEN": "env"}
    found = discover(environ=environ, admin_token="arg")
    assert (found.grpc_addr, found.admin_addr) == ("127.0.0.1:7000", "127.0.0.1:7002")
    assert (found.sessions_token(), found.admin_bearer()) == ("env", "arg")


def test_a_bad_config_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "sandgate.toml"
    config.write_text('grpc_addr = "nowhere"\n')
    with pytest.raises(sdk.ConfigurationError) as raised:
        discover(config, environ={})
    assert raised.value.field == "grpc_addr"


async def _count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


def test_the_sync_portal_iterates_and_closes_what_is_left() -> None:
    portal = Portal()
    try:
        assert list(portal.iterate(_count(3))) == [0, 1, 2]
        left_open = portal.iterate(_count(3))
        assert next(left_open) == 0
    finally:
        portal.close()
    left_open.close()  # after the client closed: nothing to close, and no error
