"""The CLI's one seam to the admin HTTP API: a method per route, every path segment and query value encoded.

The commands call only these methods, so the transport underneath (today `AdminClient`, later the SDK) can
change without touching them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode


class Transport(Protocol):
    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]: ...
    def follow(self, path: str) -> Iterator[dict[str, Any]]: ...


def segment(value: str) -> str:
    """One path segment, `/` included, percent-encoded: `10.0.0.0/30` is `10.0.0.0%2F30`."""
    return quote(value, safe="")


def query(params: Mapping[str, object]) -> str:
    """`?k=v&...` of the parameters that are set (not None, not ""), each encoded; "" if none are."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else ""


def host_spelling(host: str) -> str:
    """The spelling the admin API's schema takes: lower case, no trailing dot, non-ASCII labels as A-labels
    (`Bücher.Example.` is `xn--bcher-kva.example`). Anything else is left for the API to refuse by name."""
    labels = host.strip().rstrip(".").lower().split(".")
    return ".".join(_a_label(label) for label in labels)


def _a_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return label


def _wait(wait: bool) -> str:
    return query({"wait": "applied" if wait else None})


class AdminApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def egress(self, session_id: str) -> list[dict[str, Any]]:
        """The rules in force of a session: `[{host, ports, methods, paths, inspect, credential}]`."""
        return list(self._t.call("GET", f"/v1/sessions/{segment(session_id)}/egress")["egress"])

    def egress_add(self, session_id: str, rule: dict[str, Any], wait: bool) -> dict[str, Any]:
        """Add one rule; `{session_id, egress, applied}`."""
        rule = {**rule, "host": host_spelling(str(rule["host"]))}
        return self._t.call("POST", f"/v1/sessions/{segment(session_id)}/egress{_wait(wait)}", rule)

    def egress_remove(self, session_id: str, host: str, wait: bool) -> dict[str, Any]:
        """Remove the rule for `host` (a name, `*.` wildcard, IP or CIDR); `{session_id, egress, applied}`."""
        path = f"/v1/sessions/{segment(session_id)}/egress/{segment(host_spelling(host))}{_wait(wait)}"
        return self._t.call("DELETE", path)

    def secrets(self) -> list[dict[str, Any]]:
        """Stored secrets: `[{name, header, format, created_at, placeholder}]`, never a value."""
        return list(self._t.call("GET", "/v1/secrets")["secrets"])

    def set_secret(self, name: str, body: dict[str, str], wait: bool) -> dict[str, Any]:
        """Store or replace a secret (`{value, header, format}`); its metadata and `applied`."""
        return self._t.call("PUT", f"/v1/secrets/{segment(name)}{_wait(wait)}", body)

    def remove_secret(self, name: str) -> None:
        """Delete a secret that no rule names."""
        self._t.call("DELETE", f"/v1/secrets/{segment(name)}")

    def policy(self) -> dict[str, Any]:
        """The global policy: `{default_egress, deny}`."""
        return self._t.call("GET", "/v1/policy")

    def set_policy(self, policy: dict[str, Any], wait: bool) -> dict[str, Any]:
        """Replace the global policy; the stored policy and `applied`."""
        return self._t.call("PUT", f"/v1/policy{_wait(wait)}", policy)

    def rotate_signing_key(self, wait: bool) -> dict[str, Any]:
        """A new key signs from now on: `{signing_key, verifying_keys}`."""
        return self._t.call("POST", f"/v1/signing-keys/rotate{_wait(wait)}")

    def decisions(self, session_id: str | None, verdict: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` decisions, newest first."""
        path = "/v1/decisions" + query({"limit": limit, "session_id": session_id, "verdict": verdict})
        return list(self._t.call("GET", path)["decisions"])

    def follow_decisions(self, session_id: str | None, verdict: str | None) -> Iterator[dict[str, Any]]:
        """Decisions as they happen, until interrupted."""
        return self._t.follow("/v1/decisions" + query({"session_id": session_id, "verdict": verdict}))
