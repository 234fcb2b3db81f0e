"""`sandgate image build`: the default sandbox image, built offline from Debian packages, with progress."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from control_plane.sandbox import packaged


def build_image(name: str = "sandgate-sandbox") -> str:
    """Build (or find cached) and return the image reference, showing progress on stderr."""
    done = threading.Event()
    spinner = threading.Thread(target=_progress, args=(done, "building the sandbox image"), daemon=True)
    spinner.start()
    try:
        result = subprocess.run(["bash", str(packaged("build-image.sh")), name], capture_output=True, text=True,
                                check=False)  # fmt: skip
    finally:
        done.set()
        spinner.join()
    if result.returncode != 0:
        raise SystemExit(f"sandgate: building the sandbox image failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def _progress(done: threading.Event, label: str) -> None:
    """A spinner with elapsed seconds on a terminal; a line every 10 s otherwise."""
    frames, start, tty = "|/-\\", time.monotonic(), sys.stderr.isatty()
    i = 0
    while not done.wait(0.2 if tty else 10):
        elapsed = time.monotonic() - start
        if tty:
            sys.stderr.write(f"\r{frames[i % 4]} {label}... {elapsed:4.0f}s")
        else:
            sys.stderr.write(f"{label}... {elapsed:.0f}s\n")
        sys.stderr.flush()
        i += 1
    if tty:
        sys.stderr.write(f"\r{label}: done in {time.monotonic() - start:.0f}s\n")
