"""This host's own addresses, so that no sandbox can reach a service bound to one of them.

They are read at start and again whenever the kernel reports an address change (`ip monitor address`),
so an address added to the host later is forbidden within moments, not at the next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
from collections.abc import Callable

log = logging.getLogger(__name__)
RESTART_DELAY_S = 1.0


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
    return tuple(sorted(set(found)))


async def watch_host_addresses(on_change: Callable[[tuple[str, ...]], None]) -> None:
    """Call `on_change(addresses)` now and after every address change the kernel reports. Runs until cancelled.

    Each event re-reads the whole list (events can be coalesced or lost; the list cannot be wrong).
    """
    while True:
        on_change(await asyncio.to_thread(host_addresses))
        try:
            proc = await asyncio.create_subprocess_exec(
                "ip", "monitor", "address", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
        except OSError as exc:
            log.warning("cannot follow this host's address changes (%s); read once at start only", exc)
            return
        try:
            await _follow(proc, on_change)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.sleep(RESTART_DELAY_S)


async def _follow(proc: asyncio.subprocess.Process, on_change: Callable[[tuple[str, ...]], None]) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        # A burst of events (an interface coming up) settles before the list is read again.
        with contextlib.suppress(TimeoutError):
            while await asyncio.wait_for(proc.stdout.readline(), 0.05):
                pass
        on_change(await asyncio.to_thread(host_addresses))
