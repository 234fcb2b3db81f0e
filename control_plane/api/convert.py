"""Between the sessions API messages and the domain. No logic beyond the mapping."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.domain.rules import EgressRule, RuleLimits, check_port_count, check_rule_count
from control_plane.domain.session import MetadataLimits, Session, check_env_count, check_label_count
from control_plane.sessions.manager import CreateRequest


def check_counts(req: pb.CreateSessionRequest, rules: RuleLimits, meta: MetadataLimits) -> None:
    """Counts first, before anything is copied out of the message: a request of millions of tiny
    entries (a few MB) would otherwise take seconds of the event loop to convert."""
    check_rule_count(len(req.egress), "egress", rules)
    for i, rule in enumerate(req.egress):
        check_port_count(len(rule.ports), f"egress[{i}].ports", rules)
    check_label_count(len(req.labels), meta)
    check_env_count(len(req.env), "env", meta)


def create_request(req: pb.CreateSessionRequest, rules: RuleLimits, meta: MetadataLimits) -> CreateRequest:
    check_counts(req, rules, meta)
    limits = req.limits
    return CreateRequest(
        image=req.image,
        ttl_seconds=req.ttl_seconds if req.HasField("ttl_seconds") else None,
        egress=[_rule_mapping(r) for r in req.egress],
        memory_mb=limits.memory_mb,
        cpus=limits.cpus,
        pids=limits.pids,
        env=dict(req.env),
        labels=dict(req.labels),
        report_only=req.report_only,
        idle_timeout_seconds=req.idle_timeout_seconds,
        on_unlisted=pb.OnUnlisted.Name(req.on_unlisted),
    )


def session_message(s: Session, proxy_url: str, token: str = "") -> pb.Session:
    return pb.Session(
        id=s.id,
        state=s.state.value,
        created_at=_timestamp(s.created_at),
        expires_at=_timestamp(s.expires_at),
        egress=[_rule_message(r) for r in s.egress],
        limits=pb.Limits(memory_mb=s.limits.memory_mb, cpus=s.limits.cpus, pids=s.limits.pids),
        labels=dict(s.labels),
        proxy_url=proxy_url,
        token=token,
        image=s.image,
        report_only=s.report_only,
        idle_timeout_seconds=s.idle_timeout_s,
        failure_reason=s.failure_reason,
        on_unlisted=s.on_unlisted.value,
    )


def _rule_mapping(r: pb.EgressRule) -> dict[str, object]:
    return {
        "host": r.host, "ports": list(r.ports), "methods": list(r.methods),
        "paths": list(r.paths), "inspect": r.inspect, "credential": r.credential,
    }  # fmt: skip


def _rule_message(r: EgressRule) -> pb.EgressRule:
    return pb.EgressRule(
        host=r.host, ports=r.ports, methods=r.methods, paths=r.paths, inspect=r.inspect, credential=r.credential
    )


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
