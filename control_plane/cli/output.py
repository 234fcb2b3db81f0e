"""Human tables by default, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def emit(data: Any, as_json: bool, columns: Sequence[str] = ()) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    rows = data if isinstance(data, list) else [data]
    if not columns:
        for row in rows:
            print(row)
        return
    print_table([[_cell(row.get(c)) for c in columns] for row in rows], [c.upper() for c in columns])


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return "-" if value in (None, "") else str(value)


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for line in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def fail(message: str, code: int = 1) -> int:
    print(f"sandgate: {message}", file=sys.stderr)
    return code
