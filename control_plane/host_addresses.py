"""This host's own addresses, so that no sandbox can reach a service bound to one of them."""

from __future__ import annotations

import json
import logging
import subprocess

log = logging.getLogger(__name__)


def host_addresses() -> tuple[str, ...]:
    """Every address on this host's interfaces as a /32 or /128; empty if `ip` is unavailable."""
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=True)
        interfaces = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("cannot list this host's addresses (%s); only the configured ranges are forbidden", exc)
        return ()
    found = []
    for interface in interfaces:
        for info in interface.get("addr_info", []):
            local = info.get("local")
            if local:
                found.append(f"{local}/{128 if ':' in local else 32}")
    return tuple(found)
