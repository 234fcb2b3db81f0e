"""Setup's daemon.json merge, against temporary files: it adds Sandgate's runtime and keeps everything else."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from control_plane import docker_daemon
from control_plane.docker_daemon import RUNTIME_NAME, DaemonConfigError, apply, main, merge_runtime, runtime_entry

RUNSC = "/usr/bin/runsc"
HOST_CONFIG = {
    "log-driver": "journald",
    "dns": ["10.1.2.3"],
    "default-address-pools": [{"base": "172.30.0.0/16", "size": 24}],
    "default-runtime": "runc",
    "runtimes": {"kata": {"path": "/usr/bin/kata-runtime"}},
    "live-restore": True,
}


def test_a_missing_daemon_json_gets_the_runtime_and_nothing_about_networking(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "daemon.json"
    merged = apply(path, RUNSC)
    assert json.loads(path.read_text()) == {"runtimes": {RUNTIME_NAME: runtime_entry(RUNSC)}}
    assert merged.changes == (f'adds runtimes."{RUNTIME_NAME}" = {json.dumps(runtime_entry(RUNSC))}',)
    assert not (tmp_path / "docker" / "daemon.json.sandgate-backup").exists()  # there was nothing to back up


def test_an_existing_daemon_json_keeps_every_other_key(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    original = json.dumps(HOST_CONFIG)
    path.write_text(original)
    path.chmod(0o640)
    apply(path, RUNSC)
    after = json.loads(path.read_text())
    runtimes = {"kata": {"path": "/usr/bin/kata-runtime"}, RUNTIME_NAME: runtime_entry(RUNSC)}
    assert after == {**HOST_CONFIG, "runtimes": runtimes}
    assert "bridge" not in after and "iptables" not in after
    assert (tmp_path / "daemon.json.sandgate-backup").read_text() == original
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".sandgate-new")] == []


def test_a_host_that_turned_its_bridge_off_keeps_it_off(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"bridge": "none", "iptables": False}))
    apply(path, RUNSC)
    assert json.loads(path.read_text())["bridge"] == "none" and json.loads(path.read_text())["iptables"] is False


def test_a_second_run_changes_nothing_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({**HOST_CONFIG, "runtimes": {RUNTIME_NAME: runtime_entry(RUNSC)}}))
    before = path.read_text()
    assert apply(path, RUNSC).changes == ()
    assert path.read_text() == before and not (tmp_path / "daemon.json.sandgate-backup").exists()


def test_a_stale_entry_is_replaced_and_the_change_says_from_what() -> None:
    old = {"path": "/usr/local/bin/runsc", "runtimeArgs": ["--network=none"]}
    merged = merge_runtime({"runtimes": {RUNTIME_NAME: old}}, RUNSC)
    assert merged.config == {"runtimes": {RUNTIME_NAME: runtime_entry(RUNSC)}}
    assert merged.changes == (f'replaces {json.dumps(old)} with runtimes."{RUNTIME_NAME}" = '
                              f"{json.dumps(runtime_entry(RUNSC))}",)  # fmt: skip


def test_the_input_mapping_is_not_modified() -> None:
    current = json.loads(json.dumps(HOST_CONFIG))
    merge_runtime(current, RUNSC)
    assert current == HOST_CONFIG


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), ('{"runtimes": []}', '"runtimes" is not')],
)
def test_a_daemon_json_it_cannot_read_is_left_alone(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    with pytest.raises(DaemonConfigError, match=reason):
        apply(path, RUNSC)
    assert path.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_main_says_what_it_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "daemon.json"
    assert main(["docker_daemon", str(path), RUNSC]) == 0
    assert capsys.readouterr().out == (
        f'{path}: adds runtimes."{RUNTIME_NAME}" = {json.dumps(runtime_entry(RUNSC))}; '
        "every other key is kept as it was\n"
    )
    assert main(["docker_daemon", str(path), RUNSC]) == 0
    assert capsys.readouterr().out == f'{path}: unchanged (runtimes."{RUNTIME_NAME}" is already set)\n'
    path.write_text("{")
    assert main(["docker_daemon", str(path), RUNSC]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_setup_can_run_it_before_any_venv_exists() -> None:
    """scripts/setup.sh runs it with the system python3: the standard library only."""
    source = Path(docker_daemon.__file__).read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= set(sys.stdlib_module_names) | {"__future__"}
