"""`sandgate approvals ls|allow|deny`: requests held on an unlisted destination, and sandboxes' proposals."""

from __future__ import annotations

import argparse

from control_plane.cli.context import CliContext
from control_plane.cli.output import emit

APPROVAL_COLUMNS = ("id", "session_id", "kind", "method", "host", "port", "reason", "state")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    ls = sub.add_parser("ls", parents=[common], help="open approvals, oldest first")
    ls.add_argument("--session", help="only this session's")
    ls.add_argument("--follow", "-f", action="store_true", help="stream approvals as they open and close")
    ls.set_defaults(handler=approvals_ls)
    allow = sub.add_parser("allow", parents=[common], help="let the held requests through")
    allow.add_argument("approval_id")
    allow.add_argument("--session", action="store_true", help="add the rule for the session (allow_session)")
    allow.set_defaults(handler=approvals_allow)
    deny = sub.add_parser("deny", parents=[common], help="refuse the held requests (403 approval-denied)")
    deny.add_argument("approval_id")
    deny.set_defaults(handler=approvals_deny)


def approvals_ls(ctx: CliContext, a: argparse.Namespace) -> int:
    path = "/v1/approvals" + (f"?session_id={a.session}" if a.session else "")
    admin = ctx.admin()
    if not a.follow:
        emit(admin.call("GET", path)["approvals"], ctx.as_json, APPROVAL_COLUMNS)
        return 0
    for approval in admin.follow(path):
        if ctx.as_json:
            emit(approval, True)
        else:
            print(" ".join(str(approval[c]) for c in APPROVAL_COLUMNS), flush=True)
    return 0


def approvals_allow(ctx: CliContext, a: argparse.Namespace) -> int:
    return _decide(ctx, a.approval_id, "allow_session" if a.session else "allow_once")


def approvals_deny(ctx: CliContext, a: argparse.Namespace) -> int:
    return _decide(ctx, a.approval_id, "deny")


def _decide(ctx: CliContext, approval_id: str, decision: str) -> int:
    closed = ctx.admin().call("POST", f"/v1/approvals/{approval_id}", {"decision": decision})
    if ctx.as_json:
        emit(closed, True)
    else:
        print(f"{closed['id']}: {closed['state']} ({closed['host']}:{closed['port']} for {closed['session_id']})")
    return 0
