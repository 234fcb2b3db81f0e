"""`sandgate policy get|set` and `sandgate keys rotate`: the global policy and the token signing keys."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from control_plane.cli.context import CliContext
from control_plane.cli.output import emit
from control_plane.errors import InvalidArgument

RULE_COLUMNS = ("host", "ports", "methods")


def policy_get(ctx: CliContext, a: argparse.Namespace) -> int:
    _show_policy(ctx, ctx.admin_api().policy())
    return 0


def policy_set(ctx: CliContext, a: argparse.Namespace) -> int:
    """The policy from a JSON file (`-`: stdin), e.g. `{"default_egress": [{"host": "pypi.org"}], "deny": []}`."""
    policy = _read_json(a.file)
    _show_policy(ctx, ctx.admin_api().set_policy(policy, a.wait))
    return 0


def _read_json(name: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        data = json.loads(text)
    except OSError as exc:
        raise InvalidArgument(f"cannot read {name}: {exc.strerror}", field="FILE") from None
    except ValueError as exc:
        raise InvalidArgument(f"{name} is not JSON: {exc}", field="FILE") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{name} must hold a JSON object with default_egress and deny", field="FILE")
    return data


def _show_policy(ctx: CliContext, policy: dict[str, Any]) -> None:
    if ctx.as_json:
        emit(policy, True)
        return
    print("default rules of new sessions:")
    emit(policy["default_egress"], False, RULE_COLUMNS)
    print("denied to every session: " + (", ".join(policy["deny"]) or "-"))
    if "applied" in policy:
        print("applied: every Envoy has ACKed the change" if policy["applied"] else "stored and pushed")


def keys_rotate(ctx: CliContext, a: argparse.Namespace) -> int:
    result = ctx.admin_api().rotate_signing_key(a.wait)
    if ctx.as_json:
        emit(result, True)
    else:
        print(f"signing key: {result['signing_key']}")
        print(f"verifying keys: {', '.join(result['verifying_keys'])}")
    return 0
