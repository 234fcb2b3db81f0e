"""Path globs: what they match, and the globs that are refused."""

from __future__ import annotations

import pytest

from control_plane.domain.paths import parse_paths, path_allowed
from control_plane.domain.rules import parse_rule
from control_plane.errors import InvalidArgument


@pytest.mark.parametrize(
    ("globs", "path", "allowed"),
    [
        (("/repos/**",), "/repos/a/b/c", True),
        (("/repos/**",), "/repos/", True),
        (("/repos/**",), "/repository", False),
        (("/simple/*",), "/simple/requests", True),
        (("/simple/*",), "/simple/requests/", False),
        (("/simple/*/",), "/simple/requests/", True),
        (("/simple/*",), "/other/requests", False),
        (("/a.b",), "/aXb", False),  # a dot is literal
        (("/v1/chat", "/v1/models"), "/v1/models", True),
        (("/v1/chat",), "/v1/chat/x", False),  # a glob matches the whole path
        ((), "/anything", True),
    ],
)
def test_globs(globs: tuple[str, ...], path: str, allowed: bool) -> None:
    assert path_allowed(globs, path) is allowed


@pytest.mark.parametrize("glob", ["repos/**", "/a b", "/a/***", "/a/../b", "/a/./b", "/a?b", "/x#y", "/" + "a" * 300])
def test_bad_globs_are_refused(glob: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_paths([glob], "rule.paths")
    assert err.value.field == "rule.paths"


def test_paths_are_sorted_and_deduplicated() -> None:
    assert parse_paths(["/b", "/a", "/b"]) == ("/a", "/b")


def test_inspect_needs_an_exact_name() -> None:
    for host in ("*.wild.test", "10.0.0.1", "10.0.0.0/30"):
        with pytest.raises(InvalidArgument):
            parse_rule(host, inspect=True, field="rule")
    assert parse_rule("api.example.test", inspect=True).inspect


def test_a_credential_needs_inspection() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rule("api.example.test", credential="key", field="rule")
    assert err.value.field == "rule.credential"
    assert parse_rule("api.example.test", inspect=True, credential="key").credential == "key"


def test_credential_names_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        parse_rule("api.example.test", inspect=True, credential="a/b", field="rule")
