"""The compose deployment: docker-compose accepts it, its Envoy runs the bootstrap the control plane writes
(reaching it over the root-only unix sockets), and Envoy accepts that bootstrap."""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from control_plane import config
from control_plane.channel.address import ControlAddress
from control_plane.channel.bootstrap import BootstrapOptions, EnvoyTls, bootstrap_text
from control_plane.channel.pki import load_or_mint
from control_plane.envoy_process import default_binary

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose" / "docker-compose.yml"
SETTINGS = config.load(REPO / "compose" / "sandgate.toml", environ={})


def compose_config() -> dict[str, object]:
    out = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)  # type: ignore[no-any-return]


def test_docker_compose_accepts_the_file() -> None:
    services = compose_config()["services"]
    assert set(services) == {"control-plane", "envoy"}  # type: ignore[arg-type]


def test_compose_envoy_runs_the_bootstrap_the_control_plane_writes() -> None:
    services = compose_config()["services"]
    envoy = services["envoy"]  # type: ignore[index]
    command = envoy["command"]
    assert command[command.index("-c") + 1] == str(SETTINGS.envoy_bootstrap_path)
    assert "--disable-hot-restart" in command and not SETTINGS.manage_envoy
    assert services["control-plane"]["healthcheck"]["test"][-1] == str(SETTINGS.envoy_bootstrap_path)  # type: ignore[index]
    assert envoy["depends_on"] == {"control-plane": {"condition": "service_healthy"}}
    version = subprocess.run([str(default_binary()), "--version"], capture_output=True, text=True, check=True).stdout
    release = re.search(r"version: \w+/(\d+\.\d+\.\d+)/", version)
    assert release and envoy["image"] == f"envoyproxy/envoy:v{release.group(1)}"


def test_compose_envoy_sees_its_sockets_and_nothing_else_of_the_state_dir() -> None:
    envoy = compose_config()["services"]["envoy"]  # type: ignore[index]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in envoy["volumes"]}
    shared = {str(SETTINGS.envoy_dir), str(SETTINGS.state_dir / "sessions")}
    assert mounts == {path: path for path in shared}  # the same paths inside and out
    assert SETTINGS.control_address.path == SETTINGS.envoy_dir / "xds.sock"  # a unix socket: no TCP, no certificates
    assert SETTINGS.envoy_admin_path.parent == SETTINGS.envoy_dir


@pytest.mark.parametrize("channel", ["unix", "mtls"])
def test_envoy_accepts_the_bootstrap(tmp_path: Path, channel: str) -> None:
    address, tls = SETTINGS.control_address, None
    if channel == "mtls":
        pki = load_or_mint(tmp_path / "tls", SETTINGS.node_id, datetime.datetime.now(datetime.UTC))
        address, tls = ControlAddress(host="10.0.0.1", port=18000), EnvoyTls(pki.ca.cert_pem, pki.envoy)
    options = BootstrapOptions(SETTINGS.node_id, SETTINGS.envoy_admin_path, address, SETTINGS.xds_api, tls)
    bootstrap = tmp_path / "bootstrap.yaml"
    bootstrap.write_text(bootstrap_text(options))
    out = subprocess.run([str(default_binary()), "--mode", "validate", "-c", str(bootstrap), "--disable-hot-restart"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def dockerfile_stages() -> list[list[str]]:
    """compose/Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = (REPO / "compose" / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in (ln.strip() for ln in text.splitlines()):
        if line.startswith("FROM "):
            stages.append([])
        if line and not line.startswith("#"):
            stages[-1].append(" ".join(line.split()))
    return stages


def test_the_compose_image_installs_the_wheel_and_no_source_tree() -> None:
    build, service = dockerfile_stages()
    copied = [src for i in build if i.startswith("COPY ") for src in i.split()[1:-1]]
    assert all((REPO / path).exists() for path in copied), copied  # nothing it copies has moved away
    assert {"pyproject.toml", "setup.py", "control_plane", "protos", "scripts"} <= set(copied)
    assert any("scripts/build-wheel.sh /dist" in i for i in build if i.startswith("RUN "))  # as tests/e2e/test_wheel
    assert [i for i in service if i.startswith("COPY ")] == ["COPY --from=wheel /dist /tmp/dist"]
    [install] = [i for i in service if "pip install" in i]
    assert "/tmp/dist/sandgate-*.whl" in install and " -e " not in install
    assert not any("gcc" in i for i in service)  # the forwarder is in the wheel already
    assert service[-1] == 'ENTRYPOINT ["sandgate", "serve", "--config", "/etc/sandgate/sandgate.toml"]'
