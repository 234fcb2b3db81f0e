"""At start: is the runsc that dockerd runs one Sandgate runs on? Log it, warn, or refuse with the reason."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from typing import Protocol

from control_plane.domain.runsc_version import RunscVerdict, decide
from control_plane.errors import FailedPrecondition

log = logging.getLogger(__name__)
VERSION_TIMEOUT_S = 30.0


class HasRuntimeBinary(Protocol):
    async def runtime_binary(self) -> str: ...


def version_output(binary: str) -> tuple[str | None, str]:
    """`binary --version`'s output, or None and why it could not be had."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S,
                             check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {binary}: {exc}"
    if out.returncode != 0:
        return None, f"`{binary} --version` exited with {out.returncode}: {out.stderr.strip()[:200]}"
    return out.stdout, ""


async def check_runsc(runtime: HasRuntimeBinary) -> RunscVerdict:
    """Check the runtime's runsc: logs the version, or a warning with its reason.

    Raises FailedPrecondition (with the reason) when Sandgate must not start on it, or when dockerd
    has no such runtime; Unavailable when dockerd does not answer.
    """
    binary = await runtime.runtime_binary()
    output, problem = await asyncio.to_thread(version_output, binary)
    verdict = decide(output, problem)
    if verdict.refuse:
        raise FailedPrecondition(f"refusing to start: {verdict.reason}")
    if verdict.reason:
        log.warning("runsc: %s", verdict.reason)
    else:
        log.info("runsc: %s, release %s", binary, verdict.version)
    return verdict
