"""domain/, the Envoy contract and the pure parts of xds/, authz/ and audit/ import no transport, runtime, web
framework or database, and neither does any control_plane module they import, however indirectly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "control_plane"
PURE_ROOTS = [
    *sorted((ROOT / "domain").glob("*.py")),
    ROOT / "envoy_contract.py",
    ROOT / "errors.py",
    ROOT / "authz" / "decide.py",
    ROOT / "approvals" / "book.py",
    ROOT / "approvals" / "outcome.py",
    ROOT / "audit" / "entries.py",
    ROOT / "xds" / "snapshot.py",
    ROOT / "xds" / "streams.py",
    ROOT / "xds" / "render.py",
    ROOT / "xds" / "resource.py",
    ROOT / "xds" / "cache.py",
    *sorted((ROOT / "xds" / "builders").glob("*.py")),
]
FORBIDDEN = ("grpc", "docker", "aiohttp", "sqlite3", "socket", "subprocess", "asyncio")
# The snapshot cache waits for Envoy's ACKs on an asyncio.Condition: a wait, not I/O.
ALLOWED = {ROOT / "xds" / "cache.py": {"asyncio"}}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names; `from a import b` counts as both `a` and `a.b`."""
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def module_file(dotted: str) -> Path | None:
    """The control_plane source file of a dotted name, or None (not ours, or a name inside a module)."""
    if dotted != "control_plane" and not dotted.startswith("control_plane."):
        return None
    base = ROOT.parent.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def closure(roots: list[Path]) -> set[Path]:
    """The roots and every control_plane module they import, transitively."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(f for name in imports_of(path) if (f := module_file(name)) is not None)
    return seen


PURE = sorted(closure(PURE_ROOTS))


def test_the_closure_reaches_past_the_roots() -> None:
    assert ROOT / "xds" / "types.py" in PURE and ROOT / "domain" / "rules.py" in PURE
    # Generated protobuf messages (api/gen: the wire subsets the ADS streams read and write) are data, not I/O.
    assert not any("sessions" in p.parts or ("api" in p.parts and "gen" not in p.parts) for p in PURE)


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_imports(path: Path) -> None:
    allowed = ALLOWED.get(path, set())
    bad = sorted(m for m in imports_of(path) if m.split(".")[0] in FORBIDDEN and m.split(".")[0] not in allowed)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
