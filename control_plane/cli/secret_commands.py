"""`sandgate secret set|ls|rm`, and the inspection options of rules (`--inspect`, `--path`, `--credential`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from control_plane.cli.context import CliContext
from control_plane.cli.output import emit
from control_plane.errors import InvalidArgument

SECRET_COLUMNS = ("name", "header", "format", "placeholder")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """`secret set|ls|rm` under `sub`."""
    s = sub.add_parser("set", parents=[common], help="store a secret; its value is read from stdin, never argv")
    s.add_argument("name")
    s.add_argument("--header", default="Authorization", help="the header Envoy sets (default Authorization)")
    s.add_argument("--format", default="{value}", help="the header's value, e.g. 'Bearer {value}'")
    s.add_argument("--wait", action="store_true", help="return once every Envoy has the new value")
    s.set_defaults(handler=secret_set)
    ls = sub.add_parser("ls", parents=[common], help="stored secrets: names, headers, placeholders (never values)")
    ls.set_defaults(handler=secret_ls)
    rm = sub.add_parser("rm", parents=[common], help="delete a secret that no rule names")
    rm.add_argument("name")
    rm.set_defaults(handler=secret_rm)


def secret_set(ctx: CliContext, a: argparse.Namespace) -> int:
    value = getpass.getpass(f"value of {a.name}: ") if sys.stdin.isatty() else sys.stdin.read().rstrip("\n")
    body = {"value": value, "header": a.header, "format": a.format}
    emit(ctx.admin_api().set_secret(a.name, body, a.wait), ctx.as_json, SECRET_COLUMNS)
    return 0


def secret_ls(ctx: CliContext, a: argparse.Namespace) -> int:
    emit(ctx.admin_api().secrets(), ctx.as_json, SECRET_COLUMNS)
    return 0


def secret_rm(ctx: CliContext, a: argparse.Namespace) -> int:
    ctx.admin_api().remove_secret(a.name)
    return 0


def add_rule_options(parser: argparse.ArgumentParser, per_host: bool) -> None:
    """`egress add` takes them for its one host; `session create` as HOST=VALUE (and --inspect HOST)."""
    host = "HOST=" if per_host else ""
    if per_host:
        parser.add_argument("--inspect", action="append", default=[], metavar="HOST",
                            help="decrypt this --allow host's HTTPS and decide each request (repeat)")  # fmt: skip
    else:
        parser.add_argument("--inspect", action="store_true", help="decrypt its HTTPS and decide each request")
    parser.add_argument("--path", action="append", default=[], metavar=f"{host}GLOB",
                        help="allow only these paths, e.g. /repos/** (repeat)")  # fmt: skip
    parser.add_argument("--credential", action="append" if per_host else "store", default=[] if per_host else "",
                        metavar=f"{host}SECRET", help="inject this stored secret (inspected HTTPS only)")  # fmt: skip


def apply_to_rules(rules: list[dict[str, Any]], a: argparse.Namespace) -> list[dict[str, Any]]:
    """`session create`'s --inspect HOST, --path HOST=GLOB and --credential HOST=SECRET onto its --allow rules."""
    by_host = {r["host"]: r for r in rules}
    for host in a.inspect:
        _rule(by_host, rules, host, "--inspect")["inspect"] = True
    for item in a.path:
        host, glob = _pair(item, "--path")
        _rule(by_host, rules, host, "--path").setdefault("paths", []).append(glob)
    for item in a.credential:
        host, name = _pair(item, "--credential")
        _rule(by_host, rules, host, "--credential")["credential"] = name
    return rules


def _rule(by_host: dict[str, dict[str, Any]], rules: list[dict[str, Any]], host: str, flag: str) -> dict[str, Any]:
    if host not in by_host:
        raise InvalidArgument(f"{host!r} is in no --allow", field=flag)
    return by_host[host]


def _pair(item: str, flag: str) -> tuple[str, str]:
    host, sep, value = item.partition("=")
    if not sep or not host or not value:
        raise InvalidArgument(f"{item!r} is not HOST=VALUE", field=flag)
    return host, value
