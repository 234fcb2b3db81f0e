"""Building the package compiles the static in-sandbox forwarder into it; pyproject.toml says the rest.

The wheel carries `control_plane/sandbox/sandgate-forward`, a static Linux binary for the machine that
built it, so it is tagged for that platform (py3-none-linux_x86_64 on x86-64) rather than as pure Python.
An editable install (scripts/setup.sh) compiles it in place.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

SOURCE = Path("control_plane", "sandbox", "forward.c")
BINARY = "sandgate-forward"


def compile_forwarder(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-o", str(target), str(SOURCE)], check=True)
    target.chmod(0o755)


class BuildPyWithForwarder(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            compile_forwarder(SOURCE.with_name(BINARY))
        else:
            compile_forwarder(Path(self.build_lib, *SOURCE.parent.parts, BINARY))


class WithNativeBinary(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # installed as a platform package (platlib), with a platform tag


class PlatformWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform  # any Python 3: the binary is no extension module


setup(distclass=WithNativeBinary, cmdclass={"build_py": BuildPyWithForwarder, "bdist_wheel": PlatformWheel})
