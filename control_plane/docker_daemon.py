"""dockerd's daemon.json: register Sandgate's runsc runtime and change nothing else.

Run by scripts/setup.sh with the system Python, before any venv exists, so this module uses the standard
library only:

    python3 -m control_plane.docker_daemon /etc/docker/daemon.json [RUNSC_PATH]

It adds (or corrects) one entry, `runtimes.runsc-sandgate`, and keeps every other key and value as it was:
a host's bridge, iptables, DNS, logging or default runtime are the host's business. Sandboxes need no
docker networking (each runs with `network_mode: none`), so Sandgate has no reason to touch it.
runsc's own `--network=none` gives a sandbox loopback only (gVisor's netstack cannot run in the root
network namespace on this kernel), and `--host-uds=open` lets it connect to its session's unix socket.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_NAME = "runsc-sandgate"
RUNTIME_ARGS = ("--network=none", "--host-uds=open")


class DaemonConfigError(ValueError):
    """daemon.json cannot be merged safely (not JSON, or not the shape dockerd reads); nothing was written."""


@dataclass(frozen=True)
class RuntimeMerge:
    """The merged daemon.json and what changed in it, one sentence per change (empty: nothing to write)."""

    config: dict[str, Any]
    changes: tuple[str, ...]


def runtime_entry(runsc_path: str) -> dict[str, Any]:
    """The `runtimes.runsc-sandgate` value for the runsc binary at `runsc_path`."""
    return {"path": runsc_path, "runtimeArgs": list(RUNTIME_ARGS)}


def merge_runtime(current: Mapping[str, Any], runsc_path: str) -> RuntimeMerge:
    """`current` (a parsed daemon.json) with Sandgate's runtime set; every other key is kept as it was.

    Raises DaemonConfigError if `current` or its `runtimes` is not a JSON object.
    """
    if not isinstance(current, Mapping):
        raise DaemonConfigError("daemon.json is not a JSON object")
    runtimes = current.get("runtimes", {})
    if not isinstance(runtimes, Mapping):
        raise DaemonConfigError('daemon.json\'s "runtimes" is not a JSON object')
    wanted, before = runtime_entry(runsc_path), runtimes.get(RUNTIME_NAME)
    if before == wanted:
        return RuntimeMerge(dict(current), ())
    verb = "adds" if before is None else f"replaces {json.dumps(before)} with"
    change = f'{verb} runtimes."{RUNTIME_NAME}" = {json.dumps(wanted)}'
    return RuntimeMerge({**current, "runtimes": {**runtimes, RUNTIME_NAME: wanted}}, (change,))


def read_config(path: Path) -> dict[str, Any]:
    """The parsed daemon.json at `path`; {} if it is missing or empty. Raises DaemonConfigError if not JSON."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        parsed = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise DaemonConfigError(f"{path} is not valid JSON ({exc}); fix it by hand, nothing was changed") from None
    if not isinstance(parsed, dict):
        raise DaemonConfigError(f"{path} is not a JSON object; nothing was changed")
    return parsed


def apply(path: Path, runsc_path: str) -> RuntimeMerge:
    """Merge Sandgate's runtime into the daemon.json at `path` (created if missing), atomically.

    An existing file that changes is first copied to `<path>.sandgate-backup`, and keeps its mode. Returns
    what changed (nothing is written when nothing changes). Raises DaemonConfigError, OSError.
    """
    merged = merge_runtime(read_config(path), runsc_path)
    if not merged.changes:
        return merged
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".sandgate-new")
    tmp.write_text(json.dumps(merged.config, indent=2) + "\n")
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".sandgate-backup"))
        shutil.copymode(path, tmp)
    os.replace(tmp, path)
    return merged


def main(argv: list[str]) -> int:
    """`python3 -m control_plane.docker_daemon DAEMON_JSON [RUNSC_PATH]`: prints each change, or that there is none."""
    if not 2 <= len(argv) <= 3:
        print("usage: python3 -m control_plane.docker_daemon DAEMON_JSON [RUNSC_PATH]", file=sys.stderr)
        return 2
    path = Path(argv[1])
    runsc = argv[2] if len(argv) == 3 else shutil.which("runsc") or "/usr/bin/runsc"
    try:
        merged = apply(path, runsc)
    except (DaemonConfigError, OSError) as exc:
        print(f"sandgate setup: {exc}", file=sys.stderr)
        return 1
    for change in merged.changes:
        print(f"{path}: {change}; every other key is kept as it was")
    if not merged.changes:
        print(f'{path}: unchanged (runtimes."{RUNTIME_NAME}" is already set)')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
