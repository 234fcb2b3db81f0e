"""One entry of the decision log: an egress decision, an approval's outcome, or a lifecycle event. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DecisionEvent:
    id: int
    time: float
    session_id: str
    method: str
    host: str
    port: int
    verdict: str  # allow, deny, would_deny, error (allowed, but Envoy could not reach the upstream)
    reason: str
    response_code: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms: float = 0.0
    source: str = "envoy"
    stream_id: str = ""
    decided_by: str = ""  # an approval's outcome: the operator who decided, or "timeout"
    path: str = ""  # the request's path without its query (none for a tunnel)
    credential: str = ""  # the name of the secret Envoy injected, never its value

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
