"""Parses the command line and maps every expected failure to a message on stderr and an exit code."""

from __future__ import annotations

import argparse
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import grpc
import shtab

from control_plane.admin_client import AdminError
from control_plane.cli import approvals, secret_commands
from control_plane.cli import commands as cmd
from control_plane.cli.context import CliContext, context_from, default_config
from control_plane.cli.files import copy
from control_plane.cli.output import fail
from control_plane.cli.policy import keys_rotate, policy_get, policy_set
from control_plane.errors import SandgateError

Handler = Callable[[CliContext, argparse.Namespace], int]


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def global_flags(parser: argparse.ArgumentParser, top: bool) -> argparse.ArgumentParser:
    """The flags every command takes, anywhere on the line. Below the top they default to SUPPRESS, so a flag
    given before the subcommand is not reset by the subcommand's own default (argparse's parents= pitfall)."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--config", type=Path, default=default(default_config()),
                        help="TOML config (default $SANDGATE_CONFIG)")  # fmt: skip
    parser.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    parser.add_argument("--grpc-addr", default=default(None), metavar="HOST:PORT",
                        help="the sessions API (default $SANDGATE_GRPC_ADDR, then the config)")  # fmt: skip
    parser.add_argument("--admin-addr", default=default(None), metavar="HOST:PORT",
                        help="the admin API (default $SANDGATE_ADMIN_ADDR, then the config)")  # fmt: skip
    return parser


def _parser() -> argparse.ArgumentParser:
    common = global_flags(argparse.ArgumentParser(add_help=False), top=False)
    p = global_flags(argparse.ArgumentParser(prog="sandgate",
                     description="Sandgate: gVisor sandboxes that reach only what you allow."), top=True)  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", parents=[common], help="run the control plane and a managed Envoy")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines (default: the log_format setting)")
    image = sub.add_parser("image", parents=[common], help="the default sandbox image")
    image.add_argument("action", choices=["build"])
    _session_parsers(_group(sub, "session", "create, list, inspect, end and use sessions", common), common)
    _egress_parsers(_group(sub, "egress", "a session's allowlist, live", common), common)
    _policy_parsers(_group(sub, "policy", "the global policy: default rules and denied names", common), common)
    keys = _group(sub, "keys", "the signing keys of session tokens", common)
    rotate = keys.add_parser("rotate", parents=[common], help="sign with a new key; live tokens stay valid")
    rotate.add_argument("--wait", action="store_true", help="return once every Envoy has the new key set")
    rotate.set_defaults(handler=keys_rotate)
    cp = sub.add_parser("cp", parents=[common], help="copy a file into or out of a sandbox (SESSION:PATH)")
    cp.add_argument("source", metavar="SOURCE", help="a local file, - for stdin, or SESSION:PATH")
    cp.add_argument("target", metavar="TARGET", help="a local file, - for stdout, or SESSION:PATH")
    cp.set_defaults(handler=copy)
    approvals.add_parsers(_group(sub, "approvals", "held requests and proposals", common), common)
    secret_commands.add_parsers(_group(sub, "secret", "secrets injected on inspected HTTPS", common), common)
    d = sub.add_parser("decisions", parents=[common], help="the audit log of egress decisions")
    d.add_argument("--session", help="only this session")
    d.add_argument("--verdict", choices=["allow", "deny", "would_deny", "error", "event"])
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--follow", "-f", action="store_true", help="stream new decisions as they happen")
    d.set_defaults(handler=cmd.decisions)
    completion = sub.add_parser("completion", parents=[common], help="print a shell completion script")
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"])
    return p


def _group(sub: Subparsers, name: str, about: str, common: argparse.ArgumentParser) -> Subparsers:
    parser = sub.add_parser(name, parents=[common], help=about)
    actions: Subparsers = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    return actions


def _policy_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    sub.add_parser("get", parents=[common], help="show the global policy").set_defaults(handler=policy_get)
    put = sub.add_parser("set", parents=[common], help="replace the global policy from JSON")
    put.add_argument("file", metavar="FILE", help='JSON {"default_egress": [...], "deny": [...]}; - for stdin')
    put.add_argument("--wait", action="store_true", help="return once every Envoy has applied it")
    put.set_defaults(handler=policy_set)


def _session_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    c = sub.add_parser("create", parents=[common], help="start a sandbox; prints its token once")
    c.add_argument("--allow", action="append", default=[], metavar="HOST[:PORT,...]", help="an egress rule (repeat)")
    c.add_argument("--ttl", type=int, help="seconds until the session ends")
    c.add_argument("--idle-timeout", type=int, help="end after this many idle seconds")
    c.add_argument("--image", help="container image (default: the sandbox image)")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--memory-mb", type=int)
    c.add_argument("--cpus", type=float)
    c.add_argument("--pids", type=int)
    c.add_argument("--report-only", action="store_true", help="dry run: log what would be denied, deny nothing")
    c.add_argument("--on-unlisted", choices=["DENY", "ASK"], default="DENY",
                   help="ASK: hold a request no rule covers until you decide (sandgate approvals)")  # fmt: skip
    c.add_argument("-q", "--quiet", action="store_true", help="print only the session id")
    secret_commands.add_rule_options(c, per_host=True)
    c.set_defaults(handler=cmd.session_create)
    ls = sub.add_parser("ls", parents=[common], help="list sessions")
    ls.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    ls.set_defaults(handler=cmd.session_ls)
    get = sub.add_parser("get", parents=[common], help="one session")
    get.add_argument("session_id")
    get.set_defaults(handler=cmd.session_get)
    rm = sub.add_parser("rm", parents=[common], help="end sessions (idempotent)")
    rm.add_argument("session_ids", nargs="+")
    rm.set_defaults(handler=cmd.session_rm)
    ex = sub.add_parser("exec", parents=[common], help="run a command in a sandbox; exits with its exit code")
    ex.add_argument("session_id")
    ex.add_argument("--timeout", type=int, default=0, help="kill the command after this many seconds")
    ex.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    ex.add_argument("--no-stdin", action="store_true", help="do not forward this terminal's stdin")
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    ex.set_defaults(handler=cmd.session_exec)


def _egress_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    ls = sub.add_parser("ls", parents=[common], help="the rules in force")
    ls.add_argument("session_id")
    ls.set_defaults(handler=cmd.egress_ls)
    add = sub.add_parser("add", parents=[common], help="allow a destination, live")
    add.add_argument("session_id")
    add.add_argument("host", help="HOST[:PORT,...], e.g. pypi.org or *.github.com:443")
    add.add_argument("--port", type=int, action="append", default=[])
    add.add_argument("--method", action="append", default=[], help="limit plain (or inspected) HTTP to these methods")
    add.add_argument("--wait", action="store_true", help="return once every Envoy has applied it")
    secret_commands.add_rule_options(add, per_host=False)
    add.set_defaults(handler=cmd.egress_add)
    rm = sub.add_parser("rm", parents=[common], help="remove a destination, live")
    rm.add_argument("session_id")
    rm.add_argument("host")
    rm.add_argument("--wait", action="store_true", help="return once every Envoy has applied it")
    rm.set_defaults(handler=cmd.egress_rm)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return fail("cannot reach the sessions API (is `sandgate serve` running?)", 3)
        return fail(f"{err.code().name}: {err.details()}")
    except AdminError as err:
        return fail(str(err))
    except urllib.error.URLError as err:
        return fail(f"cannot reach the admin API ({err.reason}); is `sandgate serve` running?", 3)
    except SandgateError as err:
        return fail(str(err), 2)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "completion":
        print(shtab.complete(_parser(), shell=args.shell))
        return 0
    if args.command == "image":
        from control_plane.cli.image import build_image

        print(build_image())
        return 0
    ctx = context_from(args)
    if args.command == "serve":
        from control_plane.cli.serve import serve

        return serve(ctx.settings, args.log_level, args.log_format)
    handler: Handler = args.handler
    return handler(ctx, args)


if __name__ == "__main__":
    sys.exit(main())
