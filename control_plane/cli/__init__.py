"""The `sandgate` command line: `serve`, and clients of the sessions and admin APIs."""

from control_plane.cli.main import main

__all__ = ["main"]
