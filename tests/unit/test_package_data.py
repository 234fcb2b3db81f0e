"""The package finds its own files through importlib.resources, never by a path relative to a checkout."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from control_plane.channel.bootstrap import BOOTSTRAP
from control_plane.sandbox import FORWARDER_BINARY, packaged

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-data"
]


def test_no_module_looks_for_files_beside_its_source() -> None:
    sources = [p for p in (ROOT / "control_plane").rglob("*.py") if "gen" not in p.relative_to(ROOT).parts]
    offenders = [str(p.relative_to(ROOT)) for p in sources if "__file__" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize(("package", "name"), [(p, n) for p, names in PACKAGE_DATA.items() for n in names])
def test_every_declared_data_file_is_in_the_package(package: str, name: str) -> None:
    assert (files(package) / name).is_file(), f"{package}/{name}: run scripts/setup.sh (it builds the forwarder)"


def test_the_lookups_point_into_the_package() -> None:
    assert BOOTSTRAP.read_text().startswith("# Envoy bootstrap for Sandgate.")
    assert packaged("sandgate-forward") == FORWARDER_BINARY
    with pytest.raises(FileNotFoundError, match="no-such-file is not in the installed sandgate package"):
        packaged("no-such-file")
