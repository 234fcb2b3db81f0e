"""The package as a user installs it: the wheel, in a fresh venv, run from a directory with no checkout in
sight, starts its Envoy and a sandbox and lets an allowed request through. Everything it reads of its own
(Envoy's bootstrap, the forwarder, the image build) comes from the installed package."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.e2e.conftest import OwnSandgate
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "build" / "wheelhouse"  # the wheel's dependencies, downloaded once and kept
INSTALL_TIMEOUT_S = 900


def run(argv: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=INSTALL_TIMEOUT_S, check=False)  # fmt: skip
    assert out.returncode == 0, f"{argv} failed:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a fresh venv with it and its dependencies installed from wheels only)."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = Path(run([REPO / "scripts" / "build-wheel.sh", root / "dist"], cwd=root).stdout.strip())  # as compose's
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)  # this pip installs into it
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
    install = [*pip, "install", "-q", "--no-index", "--find-links", WHEELHOUSE, wheel]
    if subprocess.run(install, cwd=root, capture_output=True, timeout=INSTALL_TIMEOUT_S, check=False).returncode:
        # A dependency is new, or this is the first run: fetch what is missing from the package index.
        run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", WHEELHOUSE, wheel], root)
        for stale in WHEELHOUSE.glob("sandgate-*.whl"):  # only its dependencies stay
            stale.unlink()
        run(install, cwd=root)
    return wheel, venv


def test_the_wheel_carries_the_forwarder_bootstrap_and_image_inputs(installed: tuple[Path, Path]) -> None:
    wheel, venv = installed
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl")  # it carries a static Linux binary
    probe = (
        "import control_plane, control_plane.channel.bootstrap as b, control_plane.sandbox as s;"
        "print(control_plane.__file__); print(b.BOOTSTRAP); print(s.FORWARDER_BINARY);"
        "print(*(s.packaged(n) for n in ('forward.c', 'build-image.sh', 'packages.txt')))"
    )
    lines = run([venv / "bin" / "python", "-c", probe], cwd=venv).stdout.split()
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert all(Path(line).is_relative_to(site) and Path(line).is_file() for line in lines), lines
    assert os.access(lines[2], os.X_OK)


def test_a_fresh_venv_outside_the_checkout_serves_a_session(
    installed: tuple[Path, Path], own_sandgate_with: OwnSandgate, short_tmp: Path, http_upstream: Upstream
) -> None:
    _, venv = installed
    proc: SandgateProcess = own_sandgate_with(python=str(venv / "bin" / "python"), cwd=short_tmp)
    assert "runsc: " in proc.log()  # the runtime's release was checked (a warning below bookworm-backports')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
    env |= {"SANDGATE_GRPC_ADDR": f"127.0.0.1:{proc.grpc_port}", "SANDGATE_API_TOKEN": proc.api_token}
    sandgate = venv / "bin" / "sandgate"
    port = http_upstream.port
    sid = run([sandgate, "session", "create", "--allow", f"allowed.test:{port}", "-q"], short_tmp, env).stdout.strip()
    curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20"]
    answered = run([sandgate, "session", "exec", sid, "--", *curl, f"http://allowed.test:{port}/hello"], short_tmp, env)
    assert answered.stdout == "200"
    site = next((venv / "lib").glob("python3*/site-packages"))
    shipped = site / "control_plane" / "sandbox" / "sandgate-forward"
    used = proc.state_dir / "bin" / "sandgate-forward"
    assert hashlib.sha256(used.read_bytes()).digest() == hashlib.sha256(shipped.read_bytes()).digest()
    run([sandgate, "session", "rm", sid], short_tmp, env)


def test_the_installed_image_build_is_the_checkouts(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """`sandgate image build` runs the packaged build script on the packaged list: the same inputs, so the same
    cached image as scripts/setup.sh's (found in the cache here, not built again)."""
    _, venv = installed
    ours = run([REPO / "control_plane" / "sandbox" / "build-image.sh", "sandgate-sandbox"], tmp_path).stdout.strip()
    assert run([venv / "bin" / "sandgate", "image", "build"], tmp_path).stdout.strip() == ours
