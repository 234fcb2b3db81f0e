"""SandboxCalls: Exec, WriteFile and ReadFile check the session and their input before the runtime is asked,
count as activity, and end with the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from control_plane.domain.session import State
from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound, PayloadTooLarge
from control_plane.sessions.manager import CreateRequest
from control_plane.sessions.runtime import ExecChunk
from control_plane.sessions.sandbox_calls import scratch_path
from tests.support.core import Core, running_core


@pytest.fixture()
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with running_core(tmp_path / "state") as c:
        yield c


async def test_exec_runs_with_the_session_env_the_callers_and_the_proxy_env(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Mapping[str, str]] = []

    async def exec_(
        session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        seen.append(env)
        yield ExecChunk("stdout", b"hi")
        yield ExecChunk(exit_code=0)

    monkeypatch.setattr(core.runtime, "exec", exec_)
    session, token = await core.manager.create(CreateRequest(env={"A": "1", "B": "1"}))
    chunks = [c async for c in core.calls.exec(session.id, ["true"], {"B": "2"}, b"", 5)]
    assert chunks == [ExecChunk("stdout", b"hi"), ExecChunk(exit_code=0)]
    (env,) = seen
    assert (env["A"], env["B"], env["SANDGATE_SESSION_ID"]) == ("1", "2", session.id)
    assert token in env["HTTP_PROXY"]


async def test_an_exec_ends_when_its_session_ends(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()

    async def hang(*_: object) -> AsyncIterator[ExecChunk]:
        started.set()
        await asyncio.Event().wait()
        yield ExecChunk(exit_code=0)

    monkeypatch.setattr(core.runtime, "exec", hang)
    session, _ = await core.manager.create(CreateRequest())

    async def run() -> list[ExecChunk]:
        return [c async for c in core.calls.exec(session.id, ["sleep", "inf"], {}, b"", 60)]

    running = asyncio.create_task(run())
    await started.wait()
    await core.manager.delete(session.id)
    with pytest.raises(FailedPrecondition, match="ended"):
        await running


async def test_calls_check_the_session_and_their_input_first(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest())
    with pytest.raises(NotFound):
        core.calls.exec("s-0000000000000000", ["true"], {}, b"", 5)
    with pytest.raises(InvalidArgument) as err:
        core.calls.exec(session.id, [], {}, b"", 5)
    assert err.value.field == "argv"
    with pytest.raises(InvalidArgument) as err:
        core.calls.exec(session.id, ["true"], {"HTTP_PROXY": "http://evil"}, b"", 5)
    assert err.value.field == "env"
    with pytest.raises(PayloadTooLarge):
        await core.calls.write_file(session.id, "/tmp/x", b"x" * (core.settings.max_write_bytes + 1))
    with pytest.raises(InvalidArgument) as err:
        await core.calls.write_file(session.id, "/etc/passwd", b"x")
    assert err.value.field == "path"
    assert await core.calls.write_file(session.id, "/tmp/x", b"abc") == 3
    assert [c async for c in core.calls.read_file(session.id, "/tmp/x")] == [b""]
    await core.registry.save(replace(session, state=State.FAILED, failure_reason="sandbox-exited: exit code 137"))
    with pytest.raises(FailedPrecondition, match=r"FAILED \(sandbox-exited: exit code 137\)"):
        await core.calls.write_file(session.id, "/tmp/x", b"x")


@pytest.mark.parametrize("path", ["tmp/x", "/tmp", "/tmp/../etc/x", "/etc/x", "/tmp/a\0b"])
def test_only_absolute_paths_under_tmp_are_scratch(path: str) -> None:
    with pytest.raises(InvalidArgument):
        scratch_path(path)
