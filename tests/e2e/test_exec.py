"""Exec and files: streaming, timeouts and cancellation kill the process, scratch-space uploads and downloads."""

from __future__ import annotations

import os
import time

import grpc
import pytest

from tests.e2e.conftest import SandgateClient

PROCS = (
    'python3 -c "import os\n'
    "for p in os.listdir('/proc'):\n"
    " if p.isdigit():\n"
    "  print(open(f'/proc/{p}/cmdline').read().replace(chr(0), ' '))\""
)


def running(client: SandgateClient, sid: str, needle: str) -> bool:
    return any(needle in line for line in client.sh(sid, PROCS)[1].splitlines())


def test_large_output_streams_in_chunks(client: SandgateClient) -> None:
    s = client.create()
    total, chunks = 0, 0
    for chunk in client.exec_stream(s.id, ["head", "-c", str(64 << 20), "/dev/zero"]):
        if chunk.WhichOneof("output") == "stdout":
            total += len(chunk.stdout)
            chunks += 1
        elif chunk.WhichOneof("output") == "exit_code":
            assert chunk.exit_code == 0
    assert total == 64 << 20 and chunks > 100


def test_timeout_kills_the_process_group(client: SandgateClient) -> None:
    s = client.create()
    result = client.exec(s.id, ["sh", "-c", "sleep 300 & sleep 301"], timeout_seconds=1)
    assert result.exit_code == 124
    assert not running(client, s.id, "sleep 30")


def test_cancelling_the_call_kills_the_process(client: SandgateClient) -> None:
    s = client.create()
    call = client.exec_stream(s.id, ["sh", "-c", "echo started; sleep 302"])
    assert next(call).stdout == b"started\n"
    assert running(client, s.id, "sleep 302")
    call.cancel()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while running(client, s.id, "sleep 302"):
        assert time.monotonic() < deadline, "the process outlived its cancelled call"
        time.sleep(0.2)


def test_write_then_read_a_file(client: SandgateClient) -> None:
    s = client.create()
    data = os.urandom(3 << 20)
    assert client.write_file(s.id, "/tmp/in.bin", data) == len(data)
    assert client.exec(s.id, ["sha256sum", "/tmp/in.bin"]).exit_code == 0
    assert client.read_file(s.id, "/tmp/in.bin") == data


@pytest.mark.parametrize("path", ["/etc/passwd", "relative.txt", "/tmp/../etc/x", "/tmpx/file", "/tmp"])
def test_paths_outside_scratch_are_refused(client: SandgateClient, path: str) -> None:
    s = client.create()
    for call in (lambda: client.write_file(s.id, path, b"x"), lambda: client.read_file(s.id, path)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "path" in err.value.details()


def test_file_errors_name_the_problem(client: SandgateClient) -> None:
    s = client.create()
    with pytest.raises(grpc.RpcError) as err:
        client.read_file(s.id, "/tmp/missing.txt")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "missing.txt" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        client.write_file(s.id, "/tmp/big.bin", b"x" * ((16 << 20) + 1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "data" in err.value.details()


def test_a_quiet_command_keeps_its_output_and_exit_code(client: SandgateClient) -> None:
    """More than 90 s without a byte of output: no client-side timeout is read as the end of the stream."""
    s = client.create()
    result = client.exec(s.id, ["sh", "-c", "echo start; sleep 92; echo done; exit 3"], timeout_seconds=150)
    assert (result.stdout, result.exit_code) == (b"start\ndone\n", 3)
