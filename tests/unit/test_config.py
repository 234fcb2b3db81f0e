"""Settings are validated once at start: each broken file in testdata/ fails, naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane import config
from control_plane.errors import InvalidArgument

BROKEN = Path(__file__).parent / "testdata" / "bad_configs"
EXPECTED_FIELD = {
    "grpc_addr_without_port": "grpc_addr",
    "no_sessions": "max_sessions",
    "pids_too_low": "default_pids",
    "bad_cidr": "forbidden_cidrs[0]",
    "rest_xds": "xds_api",
    "huge_pool": "warm_pool_size",
    "resolver_without_port": "dns_resolvers",
    "unknown_key": "unknown_key",
    "wrong_type": "max_ttl_seconds",
    "ttl_over_max": "default_ttl_seconds",
    "not_toml": "config",
    "default_memory_over_max": "default_memory_mb",
    "max_cpus_below_default": "default_cpus",
    "total_memory_below_default": "total_memory_mb",
    "total_cpus_below_default": "total_cpus",
    "no_memory_overcommit": "memory_overcommit",
    "max_pids_below_default": "max_pids",
    "huge_route_domains": "max_route_domains",
    "no_ports": "max_ports_per_rule",
    "huge_labels": "max_labels_bytes",
    "negative_env_bytes": "max_env_bytes",
    "huge_rule_count": "max_rules",
    "xds_relative_socket": "xds_addr",
    "node_id_too_long": "node_id",
    "admin_socket_too_long": "envoy_admin_socket",
    "state_dir_too_long": "state_dir",
    "one_session_takes_every_worker": "session_workers_per_session",
    "session_retention_over_global": "decision_retention_per_session",
    "huge_write": "max_write_bytes",
    "negative_stream_idle_timeout": "stream_idle_timeout_seconds",
    "empty_bucket": "session_request_burst",
    "breaker_within_one_session": "egress_max_connections",
    "tiny_buffer": "connection_buffer_bytes",
    "global_below_one_session": "envoy_max_downstream_connections",
    "database_not_sql_we_speak": "database_url",
}


@pytest.mark.parametrize("path", sorted(BROKEN.glob("*.toml")), ids=lambda p: p.stem)
def test_broken_config_fails_naming_the_key(path: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        config.load(path, environ={})
    assert err.value.field == EXPECTED_FIELD[path.stem]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('grpc_addr = "127.0.0.1:1"\nstate_dir = "/tmp/a"\n')
    settings = config.load(
        path, environ={"SANDGATE_GRPC_ADDR": "127.0.0.1:2", "SANDGATE_DNS_RESOLVERS": "127.0.0.1:53"}
    )
    assert settings.grpc_addr == "127.0.0.1:2" and settings.state_dir == Path("/tmp/a")
    assert settings.dns_resolvers == ("127.0.0.1:53",)


def test_defaults_are_valid() -> None:
    assert config.load(None, environ={}).grpc_addr == "127.0.0.1:50051"


def test_every_setting_is_documented() -> None:
    import dataclasses

    doc = (Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md").read_text()
    missing = [f.name for f in dataclasses.fields(config.Settings) if f"| `{f.name}` |" not in doc]
    assert not missing
    for variable, key in config.ENV_OVERRIDES.items():
        assert f"| `{key}` |" in doc and variable in doc


def test_envoy_reaches_the_control_plane_and_its_admin_through_root_only_sockets_by_default() -> None:
    settings = config.load(None, environ={"SANDGATE_STATE_DIR": "/srv/sg"})
    assert settings.control_address.path == Path("/srv/sg/envoy/xds.sock")
    assert settings.control_address.grpc_target == "unix:/srv/sg/envoy/xds.sock"
    assert settings.envoy_admin_path == Path("/srv/sg/envoy/admin.sock")
    tcp = config.load(None, environ={"SANDGATE_XDS_ADDR": "10.0.0.5:18000", "SANDGATE_ENVOY_ADMIN_SOCKET": "/run/a"})
    assert (tcp.control_address.path, tcp.control_address.host, tcp.control_address.port) == (None, "10.0.0.5", 18000)
    assert tcp.envoy_admin_path == Path("/run/a")


def test_the_state_database_is_the_sqlite_file_in_the_state_dir_unless_a_url_says_otherwise() -> None:
    assert config.load(None, environ={"SANDGATE_STATE_DIR": "/srv/sg"}).database == "sqlite:///srv/sg/sandgate.db"
    url = "postgresql://sandgate:pw@db.internal:5432/sandgate"
    assert config.load(None, environ={"SANDGATE_DATABASE_URL": url}).database == url
