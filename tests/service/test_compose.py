"""The compose deployment: docker-compose accepts it, and its Envoy uses the bootstrap the tests use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from control_plane import config
from control_plane.envoy_process import BOOTSTRAP, default_binary

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose" / "docker-compose.yml"


def compose_config() -> dict[str, object]:
    out = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)  # type: ignore[no-any-return]


def test_docker_compose_accepts_the_file() -> None:
    services = compose_config()["services"]
    assert set(services) == {"control-plane", "envoy"}  # type: ignore[arg-type]


def test_compose_envoy_uses_the_tested_bootstrap_and_version() -> None:
    envoy = compose_config()["services"]["envoy"]  # type: ignore[index]
    mounts = {v.split(":")[1]: Path(v.split(":")[0]) for v in envoy["volumes"]}
    assert mounts["/etc/envoy/bootstrap.yaml"].resolve() == BOOTSTRAP.resolve()
    assert "--disable-hot-restart" in envoy["command"]
    version = subprocess.run([str(default_binary()), "--version"], capture_output=True, text=True, check=True).stdout
    release = re.search(r"version: \w+/(\d+\.\d+\.\d+)/", version)
    assert release and envoy["image"] == f"envoyproxy/envoy:v{release.group(1)}"


def test_compose_settings_match_the_bootstrap() -> None:
    settings = config.load(REPO / "compose" / "sandgate.toml", environ={})
    boot = yaml.safe_load(BOOTSTRAP.read_text())
    endpoint = boot["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    address = endpoint["endpoint"]["address"]["socket_address"]
    assert settings.xds_addr == f"{address['address']}:{address['port_value']}"
    assert settings.node_id == boot["node"]["id"] and not settings.manage_envoy


def test_envoy_accepts_the_bootstrap() -> None:
    out = subprocess.run([str(default_binary()), "--mode", "validate", "-c", str(BOOTSTRAP), "--disable-hot-restart"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
