"""Which runsc releases the service runs on: parse `runsc --version`, decide to run, warn or refuse.

gVisor has no semantic versions: a release is named by its date, `release-20240729.0` upstream and
`0.0~20240729.0` in Debian. The first line of `runsc --version` carries it:

    runsc version 0.0~20221219.0
    runsc version release-20240729.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RELEASE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:\.(\d+))?(?!\d)")


@dataclass(frozen=True, order=True)
class RunscVersion:
    """A gVisor release: its date (YYYYMMDD as an int) and the patch number of that day."""

    date: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.date}.{self.patch}"

    @property
    def released(self) -> str:
        """The release date as YYYY-MM-DD."""
        d = str(self.date)
        return f"{d[:4]}-{d[4:6]}-{d[6:]}"


# The oldest release Sandgate's tests have run on (Debian bookworm's runsc); below it, refuse to start.
MINIMUM = RunscVersion(20221219, 0)
# The newest release a Debian bookworm host can install (bookworm-backports); below it, warn.
RECOMMENDED = RunscVersion(20240729, 0)


@dataclass(frozen=True)
class RunscVerdict:
    """What to do at start: run (`refuse` False, `reason` empty), warn (`reason` set), or refuse."""

    refuse: bool
    reason: str
    version: RunscVersion | None


def parse(text: str) -> RunscVersion | None:
    """The release in `runsc --version`'s output (its `runsc version` line, else its first line); None if absent."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((ln for ln in lines if ln.startswith("runsc version")), lines[0] if lines else "")
    match = _RELEASE.search(line)
    if not match:
        return None
    year, month, day, patch = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return None
    return RunscVersion(int(year + month + day), int(patch or 0))


def decide(
    output: str | None, problem: str = "", minimum: RunscVersion = MINIMUM, recommended: RunscVersion = RECOMMENDED
) -> RunscVerdict:
    """The verdict on `runsc --version`'s `output` (None: it could not be run, `problem` says why)."""
    if output is None:
        return RunscVerdict(False, f"could not check runsc's version ({problem}); Sandgate needs {minimum} or newer",
                            None)  # fmt: skip
    version = parse(output)
    first = output.strip().splitlines()[0] if output.strip() else "(nothing)"
    if version is None:
        return RunscVerdict(False, f"cannot read a release in `runsc --version` ({first!r}); "
                                   f"Sandgate needs {minimum} or newer", None)  # fmt: skip
    if version < minimum:
        return RunscVerdict(True, f"runsc {version} (released {version.released}) is older than {minimum}, the "
                                  "oldest release Sandgate is tested on; install runsc from Debian bookworm-backports "
                                  "(scripts/setup.sh does)", version)  # fmt: skip
    if version < recommended:
        return RunscVerdict(False, f"runsc {version} (released {version.released}) is older than {recommended}, "
                                   "the release Debian bookworm-backports offers, and misses gVisor's fixes since; "
                                   "scripts/setup.sh installs it", version)  # fmt: skip
    return RunscVerdict(False, "", version)
