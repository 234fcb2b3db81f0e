"""ListSessions: with sessions at every size limit, each page fits what gRPC clients accept, and paging
returns every session exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from control_plane.api import convert, paging
from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.api.servicer import SessionsService
from control_plane.config import Settings, metadata_limits, rule_limits
from control_plane.domain.expansion import route_domains
from control_plane.domain.rules import EgressRule, RuleLimits
from control_plane.domain.session import Limits, MetadataLimits, Session, State, validate_labels


def session_at_the_limits(i: int, rules: RuleLimits, meta: MetadataLimits) -> Session:
    """The largest record the limits allow: the most rules, longest hosts, every method, ports up to the
    route-domain cap, the most label bytes, the longest image reference."""
    ports_each = min(rules.max_ports_per_rule, rules.max_route_domains // rules.max_rules)
    ports = tuple(range(60_000, 60_000 + ports_each))  # five-digit ports: the longest encoding
    methods = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
    host = ("a" * 63 + ".") * 3 + "a" * 57  # 249 characters
    egress = tuple(EgressRule(f"{j:03x}{host}", ports, methods) for j in range(rules.max_rules))
    assert route_domains(egress, ()) <= rules.max_route_domains
    value_bytes = min(256, meta.max_labels_bytes // max(meta.max_labels, 1) - 63)
    labels = {f"{k:04x}" + "k" * 59: "v" * value_bytes for k in range(meta.max_labels)}
    validate_labels(labels, meta)
    return Session(f"s-{i:016x}", State.READY, "node", "r" * 255, 0.0, 1.0, egress, Limits(8192, 2.0, 4096), labels)


def test_one_session_at_the_largest_allowed_settings_is_far_below_a_page() -> None:
    biggest = Settings(max_rules=1024, max_ports_per_rule=1024, max_route_domains=100_000,
                       max_labels=1024, max_labels_bytes=256 << 10)  # fmt: skip
    message = convert.session_message(session_at_the_limits(0, rule_limits(biggest), metadata_limits(biggest)), "u")
    assert message.ByteSize() < 1 << 20 < paging.PAGE_BYTES


@dataclass
class FakeRegistry:
    sessions: list[Session]

    def matching(self, selector: dict[str, str] | None = None) -> list[Session]:
        return self.sessions


@dataclass
class FakeManager:
    registry: FakeRegistry
    settings: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(forward_port=3128, metadata_limits=MetadataLimits())
    )


def test_a_full_listing_of_sessions_at_the_default_limits_pages_within_the_message_limit() -> None:
    defaults = Settings()
    sessions = [session_at_the_limits(i, rule_limits(defaults), metadata_limits(defaults)) for i in range(40)]
    service = SessionsService(FakeManager(FakeRegistry(sessions)), calls=None)  # type: ignore[arg-type]
    seen: list[str] = []
    token = ""
    for _ in range(len(sessions)):
        request = pb.ListSessionsRequest(page_size=500, page_token=token)
        page = asyncio.run(service.list(request, context=None))
        assert 0 < page.ByteSize() <= paging.PAGE_BYTES + 1024 < paging.MAX_RESPONSE_BYTES
        seen += [s.id for s in page.sessions]
        if not (token := page.next_page_token):
            break
    assert seen == [s.id for s in sessions]  # every session once, in order, over several pages


def test_fill_stops_at_the_budget_but_always_takes_one() -> None:
    small = [pb.Session(id="x" * 100) for _ in range(10)]
    assert len(paging.fill(small, budget=250)) == 2  # 106 bytes each
    assert len(paging.fill([pb.Session(id="x" * 1000)], budget=10)) == 1
    assert paging.page_size(0) == paging.DEFAULT_PAGE and paging.page_size(10_000) == paging.MAX_PAGE
