"""ExecInteractive's request stream: the first message must be start, and each later input is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from control_plane.api import interactive
from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.errors import InvalidArgument
from control_plane.sessions.runtime import ExecInput, TerminalSize


async def stream(*messages: pb.ExecInput) -> AsyncIterator[pb.ExecInput]:
    for message in messages:
        yield message


async def test_the_first_message_gives_the_command() -> None:
    start = pb.ExecStart(session_id="s-1", argv=["sh"], env={"A": "1"}, timeout_seconds=5,
                         pty=pb.TerminalSize(rows=24, cols=80))  # fmt: skip
    session_id, command = await interactive.first_command(stream(pb.ExecInput(start=start)))
    assert session_id == "s-1"
    assert (list(command.argv), dict(command.env), command.timeout_s) == (["sh"], {"A": "1"}, 5)
    assert command.pty == TerminalSize(24, 80)


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ((), "start"),
        ((pb.ExecInput(stdin=b"x"),), "start"),
        ((pb.ExecInput(start=pb.ExecStart(argv=["sh"], pty=pb.TerminalSize(rows=24))),), "start.pty"),
    ],
)
async def test_a_bad_start_names_its_field(messages: tuple[pb.ExecInput, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await interactive.first_command(stream(*messages))
    assert raised.value.field == field


async def test_inputs_become_domain_values_in_order() -> None:
    messages = [pb.ExecInput(stdin=b"ls\n"), pb.ExecInput(resize=pb.TerminalSize(rows=40, cols=120)),
                pb.ExecInput(signal=2), pb.ExecInput(close_stdin=True)]  # fmt: skip
    got = [item async for item in interactive.inputs(stream(*messages), has_pty=True)]
    assert got == [ExecInput(stdin=b"ls\n"), ExecInput(resize=TerminalSize(40, 120)), ExecInput(signal=2),
                   ExecInput(close_stdin=True)]  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "has_pty", "field"),
    [
        ((pb.ExecInput(resize=pb.TerminalSize(rows=40, cols=120)),), False, "resize"),
        ((pb.ExecInput(resize=pb.TerminalSize(rows=40, cols=70000)),), True, "resize"),
        ((pb.ExecInput(signal=65),), False, "signal"),
        ((pb.ExecInput(close_stdin=True), pb.ExecInput(stdin=b"late")), False, "stdin"),
        ((pb.ExecInput(start=pb.ExecStart(argv=["sh"])),), False, "start"),
    ],
)
async def test_a_bad_input_names_its_field(messages: tuple[pb.ExecInput, ...], has_pty: bool, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        _ = [item async for item in interactive.inputs(stream(*messages), has_pty)]
    assert raised.value.field == field
