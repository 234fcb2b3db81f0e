"""Every timeout on a session's path is one that docs/COMPATIBILITY.md ("Tunnels") lists, and only the
configured stream idle timeout applies to an open tunnel or stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from control_plane.domain.rules import EgressRule
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.cluster import render_egress_cluster
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.builders.route import render_session_routes

DOC = Path(__file__).resolve().parents[2] / "docs" / "COMPATIBILITY.md"
TIME_WORDS = ("timeout", "duration", "ttl")


def timeouts(resource: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, value) of every field whose name says it is a time limit."""
    if isinstance(resource, dict):
        for key, value in resource.items():
            here = f"{path}.{key}" if path else key
            if any(word in key for word in TIME_WORDS) and not isinstance(value, dict | list):
                yield here, str(value)
            else:
                yield from timeouts(value, here)
    elif isinstance(resource, list):
        for item in resource:
            yield from timeouts(item, path)


def session_path(settings: EgressSettings) -> dict[str, str]:
    rules = (EgressRule("allowed.test", (443,)),)
    resources = [
        render_session_listener("s-1", "/run/s-1/proxy.sock", {"keys": []}, settings),
        render_session_routes("s-1", rules),
        render_egress_cluster(settings),
    ]
    return {path.rsplit("typed_config.", 1)[-1]: value for r in resources for path, value in timeouts(r)}


def test_the_stream_idle_timeout_is_the_setting_and_zero_means_none() -> None:
    assert session_path(EgressSettings())["stream_idle_timeout"] == "3600s"
    assert session_path(EgressSettings(stream_idle_timeout_s=0))["stream_idle_timeout"] == "0s"


def test_no_other_timeout_limits_an_open_tunnel_or_stream() -> None:
    found = session_path(EgressSettings())
    # Route timeouts are disabled; nothing sets a maximum stream or connection duration.
    assert {value for key, value in found.items() if key.endswith("route.timeout")} == {"0s"}
    assert not [key for key in found if "duration" in key]


def test_every_timeout_is_documented_under_tunnels() -> None:
    tunnels = DOC.read_text().split("## Tunnels", 1)[1].split("\n## ", 1)[0]
    names = {key.rsplit(".", 1)[-1] for key in session_path(EgressSettings())}
    assert not [name for name in names if f"`{name}`" not in tunnels]
