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
    # Strict types: none of these is coerced.
    "bool_misspelt": "manage_envoy",
    "bool_as_string": "manage_envoy",
    "fractional_count": "max_sessions",
    "number_as_string": "max_sessions",
    "string_for_list": "dns_resolvers",
    "number_in_list": "forbidden_exceptions[1]",
    "number_for_path": "state_dir",
    "port_out_of_range": "forward_port",
    "port_zero": "forward_port",
    "unknown_log_format": "log_format",
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


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("SANDGATE_MANAGE_ENVOY", "flase", "manage_envoy"),
        ("SANDGATE_MAX_SESSIONS", "1.9", "max_sessions"),
        ("SANDGATE_FORWARD_PORT", "99999", "forward_port"),
        ("SANDGATE_DNS_RESOLVERS", "[1", "dns_resolvers"),
        ("SANDGATE_DEFAULT_CPUS", "many", "default_cpus"),
        ("SANDGATE_LOG_FORMAT", "xml", "log_format"),
    ],
)
def test_a_bad_variable_fails_naming_the_key_and_the_variable(variable: str, value: str, key: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        config.load(None, environ={variable: value})
    assert err.value.field == key and variable in str(err.value)


def test_every_key_has_a_variable_parsed_as_its_type() -> None:
    settings = config.load(
        None,
        environ={
            "SANDGATE_MANAGE_ENVOY": "false",
            "SANDGATE_MAX_SESSIONS": "7",
            "SANDGATE_DEFAULT_CPUS": "0.5",
            "SANDGATE_FORBIDDEN_EXCEPTIONS": '["127.0.0.1/32"]',
            "SANDGATE_DNS_RESOLVERS": "127.0.0.1:53, 127.0.0.2:53",
            "SANDGATE_LOG_FORMAT": "json",
            "SANDGATE_NODE_ID": "",  # empty: ignored
        },
    )
    assert (settings.manage_envoy, settings.max_sessions, settings.default_cpus) == (False, 7, 0.5)
    assert settings.forbidden_exceptions == ("127.0.0.1/32",)
    assert settings.dns_resolvers == ("127.0.0.1:53", "127.0.0.2:53")
    assert (settings.log_format, settings.node_id) == ("json", "sandgate-local")


def test_a_file_takes_an_integer_where_a_float_belongs(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("max_cpus = 4\ndefault_cpus = 2\n")
    assert config.load(path, environ={}).max_cpus == 4.0


def test_settings_built_in_code_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_NODE_ID", "from-the-environment")
    assert config.Settings().node_id == "sandgate-local"
    assert config.load(None).node_id == "from-the-environment"


def _documented() -> list[list[str]]:
    """The rows of docs/CONFIG.md's table of keys: key, default, variable, meaning (backticks kept)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md").read_text()
    table = doc.split("| key | default | variable | meaning |")[1].split("\n\n")[0]
    return [line[2:-2].split(" | ", 3) for line in table.splitlines()[2:]]


def test_the_config_doc_lists_every_key_with_its_variable_and_default() -> None:
    rows = _documented()
    assert sorted(row[0].strip("`") for row in rows) == sorted(config.Settings.model_fields)
    for key, default, variable, _ in rows:
        name = key.strip("`")
        assert variable == f"`{config.variable(name)}`"
        value = config.Settings.model_fields[name].default
        if value not in ("", ()) and default.count("`") == 2 and default.startswith("`") and default.endswith("`"):
            assert default.strip("`") == _toml(value), name


def _toml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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
