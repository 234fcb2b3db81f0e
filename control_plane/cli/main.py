"""Parses the command line and maps every expected failure to a message on stderr and an exit code."""

from __future__ import annotations

import argparse
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path

import grpc

from control_plane.admin_client import AdminError
from control_plane.cli import commands as cmd
from control_plane.cli import secret_commands
from control_plane.cli.context import CliContext, context_from, default_config
from control_plane.cli.output import fail
from control_plane.errors import SandgateError

Handler = Callable[[CliContext, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=default_config(), help="TOML config (default $SANDGATE_CONFIG)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    p = argparse.ArgumentParser(prog="sandgate", parents=[common],
                                description="Sandgate: gVisor sandboxes that reach only what you allow.")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", parents=[common], help="run the control plane and a managed Envoy")
    serve.add_argument("--log-level", default="INFO")
    image = sub.add_parser("image", parents=[common], help="the default sandbox image")
    image.add_argument("action", choices=["build"])
    _session_parsers(sub.add_parser("session", help="create, list, inspect, end and use sessions").add_subparsers(
        dest="action", required=True, metavar="ACTION"), common)  # fmt: skip
    _egress_parsers(sub.add_parser("egress", help="a session's allowlist, live").add_subparsers(
        dest="action", required=True, metavar="ACTION"), common)  # fmt: skip
    secret_commands.add_parsers(sub.add_parser("secret", help="secrets injected on inspected HTTPS").add_subparsers(
        dest="action", required=True, metavar="ACTION"), common)  # fmt: skip
    d = sub.add_parser("decisions", parents=[common], help="the audit log of egress decisions")
    d.add_argument("--session", help="only this session")
    d.add_argument("--verdict", choices=["allow", "deny", "would_deny", "error", "event"])
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--follow", "-f", action="store_true", help="stream new decisions as they happen")
    d.set_defaults(handler=cmd.decisions)
    return p


def _session_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
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


def _egress_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
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
    if args.command == "image":
        from control_plane.cli.image import build_image

        print(build_image())
        return 0
    ctx = context_from(args)
    if args.command == "serve":
        from control_plane.cli.serve import serve

        return serve(ctx.settings, args.log_level)
    handler: Handler = args.handler
    return handler(ctx, args)


if __name__ == "__main__":
    sys.exit(main())
