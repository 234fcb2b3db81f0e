"""What goes into a sandbox, shipped inside the package (package data), so that an installed wheel runs
as a checkout does:

- `forward.c`, the static in-sandbox forwarder (each sandbox's PID 1), and `sandgate-forward`, its binary,
  which building the package compiles beside it (setup.py; in a checkout, scripts/setup.sh does);
- `build-image.sh` and `packages.txt`, the default sandbox image's offline build (`sandgate image build`),
  and `packages-clients.txt`, the package list of the tests' client-matrix image.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged(name: str) -> Path:
    """The file `name` of this package on disk. Raises FileNotFoundError if the package lacks it."""
    resource = files(__name__) / name
    if not isinstance(resource, Path) or not resource.is_file():  # pip and setup.sh install unzipped
        raise FileNotFoundError(f"{name} is not in the installed sandgate package ({resource})")
    return resource


FORWARDER_BINARY = Path(str(files(__name__) / "sandgate-forward"))  # present once built (see above)
