"""The client commands: sessions over gRPC, egress and decisions over the admin API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.cli.context import CliContext
from control_plane.cli.output import emit
from control_plane.cli.secret_commands import apply_to_rules
from control_plane.errors import InvalidArgument

SESSION_COLUMNS = ("id", "state", "image", "expires_at", "egress", "labels")
RULE_COLUMNS = ("host", "ports", "methods")
INSPECTION_COLUMNS = ("paths", "inspect", "credential")  # shown when a rule has any of them


def session_dict(s: pb.Session) -> dict[str, Any]:
    """A session as the CLI shows it: snake_case keys, as every other `--json` output."""
    data = MessageToDict(s, preserving_proto_field_name=True)
    data["egress"] = [_rule_text(r) for r in s.egress]
    return data


def _rule_text(rule: pb.EgressRule) -> str:
    ports = ",".join(str(p) for p in rule.ports)
    methods = "[" + ",".join(rule.methods) + "]" if rule.methods else ""
    extra = "".join(f" {p}" for p in rule.paths) + (" inspect" if rule.inspect else "")
    extra += f" credential={rule.credential}" if rule.credential else ""
    return f"{rule.host}:{ports}{methods}{extra}"


def parse_allow(text: str) -> dict[str, Any]:
    """`HOST[:PORT[,PORT...]]` to a rule; for example `pypi.org`, `*.github.com:443`, `api.test:80,8080`;
    an IPv6 address or range alone (`fe80::/126`), or in brackets with ports (`[fe80::1]:443`)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        ports = rest.removeprefix(":")
    elif text.count(":") > 1:
        host, ports = text, ""
    else:
        host, _, ports = text.partition(":")
    try:
        return {"host": host, "ports": [int(p) for p in ports.split(",") if p]}
    except ValueError:
        raise InvalidArgument(f"{text!r}: ports must be numbers, as in pypi.org:443", field="--allow") from None


def pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"{item!r} is not KEY=VALUE", field=flag)
        out[key] = value
    return out


def session_create(ctx: CliContext, a: argparse.Namespace) -> int:
    limits = {k: v for k, v in (("memory_mb", a.memory_mb), ("cpus", a.cpus), ("pids", a.pids)) if v}
    with ctx.sessions() as c:
        s = c.create(
            egress=apply_to_rules([parse_allow(x) for x in a.allow], a), ttl_seconds=a.ttl, image=a.image or "",
            labels=pairs(a.label, "--label"), env=pairs(a.env, "--env"), limits=limits,
            report_only=a.report_only, idle_timeout_seconds=a.idle_timeout or 0, on_unlisted=a.on_unlisted,
        )  # fmt: skip
    if a.quiet:
        print(s.id)
    elif ctx.as_json:
        emit(session_dict(s), True)
    else:
        emit(session_dict(s), False, SESSION_COLUMNS)
        print(f"token: {s.token}")
    return 0


def session_ls(ctx: CliContext, a: argparse.Namespace) -> int:
    with ctx.sessions() as c:
        found, token = [], ""
        while True:
            page = c.list(labels=pairs(a.label, "--label"), page_size=500, page_token=token)
            found += [session_dict(s) for s in page.sessions]
            if not (token := page.next_page_token):
                break
    emit(found, ctx.as_json, SESSION_COLUMNS)
    return 0


def session_get(ctx: CliContext, a: argparse.Namespace) -> int:
    with ctx.sessions() as c:
        emit(session_dict(c.get(a.session_id)), ctx.as_json, (*SESSION_COLUMNS, "failure_reason"))
    return 0


def session_rm(ctx: CliContext, a: argparse.Namespace) -> int:
    with ctx.sessions() as c:
        for sid in a.session_ids:
            c.delete(sid)
            if not ctx.as_json:
                print(f"ended {sid}")
    if ctx.as_json:
        emit({"ended": a.session_ids}, True)
    return 0


def session_exec(ctx: CliContext, a: argparse.Namespace) -> int:
    """Streams the command's output as it comes; exits with the command's exit code."""
    argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
    stdin = b"" if sys.stdin.isatty() or a.no_stdin else sys.stdin.buffer.read()
    code = 0
    with ctx.sessions() as c:
        for chunk in c.exec_stream(a.session_id, argv, stdin, pairs(a.env, "--env"), a.timeout):
            kind = chunk.WhichOneof("output")
            if kind == "stdout":
                sys.stdout.buffer.write(chunk.stdout)
                sys.stdout.buffer.flush()
            elif kind == "stderr":
                sys.stderr.buffer.write(chunk.stderr)
                sys.stderr.buffer.flush()
            elif kind == "exit_code":
                code = chunk.exit_code
    return code


def egress_ls(ctx: CliContext, a: argparse.Namespace) -> int:
    rules = ctx.admin_api().egress(a.session_id)
    emit(rules, ctx.as_json, rule_columns(rules))
    return 0


def egress_add(ctx: CliContext, a: argparse.Namespace) -> int:
    rule = parse_allow(a.host)
    rule["ports"] = rule["ports"] + a.port
    rule["methods"] = [m.upper() for m in a.method]
    given = {"paths": a.path, "inspect": a.inspect, "credential": a.credential}
    rule.update({k: v for k, v in given.items() if v})
    return _rules_result(ctx, ctx.admin_api().egress_add(a.session_id, rule, a.wait))


def egress_rm(ctx: CliContext, a: argparse.Namespace) -> int:
    return _rules_result(ctx, ctx.admin_api().egress_remove(a.session_id, a.host, a.wait))


def rule_columns(rules: list[dict[str, Any]]) -> tuple[str, ...]:
    """The table's columns: the inspection ones only when a rule has paths, inspect or a credential."""
    inspection = any(rule.get(c) for rule in rules for c in INSPECTION_COLUMNS)
    return RULE_COLUMNS + INSPECTION_COLUMNS if inspection else RULE_COLUMNS


def _rules_result(ctx: CliContext, result: dict[str, Any]) -> int:
    if ctx.as_json:
        emit(result, True)
    else:
        emit(result["egress"], False, rule_columns(result["egress"]))
        print("applied: every Envoy has ACKed the change" if result["applied"] else "stored and pushed")
    return 0


DECISION_COLUMNS = ("id", "session_id", "method", "host", "port", "verdict", "reason", "response_code")


def decisions(ctx: CliContext, a: argparse.Namespace) -> int:
    api = ctx.admin_api()
    if not a.follow:
        emit(list(reversed(api.decisions(a.session, a.verdict, a.limit))), ctx.as_json, DECISION_COLUMNS)
        return 0
    for event in api.follow_decisions(a.session, a.verdict):
        if ctx.as_json:
            print(json.dumps(event, sort_keys=True), flush=True)
        else:
            print(" ".join(str(event[c]) for c in DECISION_COLUMNS), flush=True)
    return 0
