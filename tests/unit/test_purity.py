"""domain/ and the pure parts of xds/ and authz/ import no transport, runtime or web framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "control_plane"
PURE = [
    *sorted((ROOT / "domain").glob("*.py")),
    ROOT / "authz" / "decide.py",
    ROOT / "approvals" / "book.py",
    ROOT / "approvals" / "outcome.py",
    ROOT / "xds" / "snapshot.py",
    ROOT / "xds" / "streams.py",
    *sorted((ROOT / "xds" / "builders").glob("*.py")),
]
FORBIDDEN = ("grpc", "docker", "aiohttp", "sqlite3", "socket", "subprocess", "asyncio")


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    bad = sorted(m for m in imported if m.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path.name} imports {bad}"
