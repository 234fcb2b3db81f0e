"""The Python SDK against a real stack, in both forms: sessions, exec (collected, streamed, with stdin,
on a PTY, signalled, killed in the background), live egress changes that wait for Envoy, the decision
log and its live stream, and typed errors that name what was wrong."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

import sandgate as sdk
from sandgate import AsyncSandgate, EgressRule, Sandgate
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

CURL = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "


def connect_args(proc: SandgateProcess) -> dict[str, str]:
    return {
        "grpc_addr": f"127.0.0.1:{proc.grpc_port}",
        "admin_addr": f"127.0.0.1:{proc.admin_port}",
        "api_token": proc.api_token,
        "admin_token": proc.admin_token,
    }


@pytest.fixture()
def sg(sandgate: SandgateProcess) -> Iterator[Sandgate]:
    with Sandgate.connect(**connect_args(sandgate)) as client:
        yield client


def test_sync_session_exec_and_live_egress(sg: Sandgate, http_upstream: Upstream) -> None:
    port = http_upstream.port
    with sg.sessions.create(allow=[f"allowed.test:{port}"], labels={"sdk": "sync"}) as session:
        assert session.info.state is sdk.State.READY and session.token
        assert session.info.egress == (EgressRule("allowed.test", (port,)),)
        assert session.run(CURL + f"http://allowed.test:{port}/").text == "200"
        assert session.run(CURL + f"http://other.test:{port}/").text == "403"
        change = session.egress.add(f"other.test:{port}", wait=True)
        assert change.applied and EgressRule("other.test", (port,)) in change.egress
        assert session.run(CURL + f"http://other.test:{port}/").text == "200"
        verdicts = {(d.host, d.verdict) for d in sg.decisions.list(session_id=session.id)}
        assert {("other.test", "deny"), ("other.test", "allow"), ("allowed.test", "allow")} <= verdicts
        assert session.id in {s.id for s in sg.sessions.list(labels={"sdk": "sync"})}
    with pytest.raises(sdk.NotFound):  # ended on leaving the block
        sg.sessions.get(session.id)


def test_sync_exec_streams_stdin_and_runs_on_a_pty(sg: Sandgate) -> None:
    with sg.sessions.create() as session:
        cat = session.exec(["cat"])
        cat.write("hello\n")
        assert next(iter(cat)) == sdk.Output("stdout", b"hello\n")  # echoed before stdin ended
        cat.close_stdin()
        assert cat.wait().exit_code == 0
        shell = session.exec("sh", pty=(24, 80))
        shell.write("stty size\n")
        assert _read_until(shell, b"24 80")
        shell.resize(50, 100)
        shell.write("stty size; exit 5\n")
        result = shell.wait()
        assert b"50 100" in result.stdout and result.exit_code == 5


def test_sync_background_process_is_signalled_then_killed(sg: Sandgate) -> None:
    with sg.sessions.create() as session:
        trapper = session.exec('trap "echo got-int" INT; echo ready; while :; do sleep 0.1; done')
        assert _read_until(trapper, b"ready")
        trapper.signal(signal.SIGINT)
        assert _read_until(trapper, b"got-int")  # it handled the signal and runs on
        trapper.kill()
        assert trapper.wait().exit_code == 128 + signal.SIGKILL


def test_sync_follow_streams_new_decisions(sg: Sandgate, http_upstream: Upstream) -> None:
    with sg.sessions.create() as session:
        url = f"http://other.test:{http_upstream.port}/"
        requests = session.exec(f"while :; do {CURL}{url}; sleep 0.2; done")  # until we have seen one
        follow = sg.decisions.follow(session_id=session.id)
        decision = next(d for d in follow if d.host == "other.test")
        follow.close()
        requests.kill()
        assert decision.verdict == "deny" and decision.reason == "host-not-allowed"


def test_errors_are_typed_and_name_the_field(sg: Sandgate) -> None:
    with pytest.raises(sdk.NotFound):
        sg.sessions.get("s-0000000000000000")
    with pytest.raises(sdk.InvalidArgument) as bad_rule:
        sg.sessions.create(allow=["bad host"])
    assert bad_rule.value.field.startswith("egress[0]") and bad_rule.value.grpc_code == "INVALID_ARGUMENT"
    with sg.sessions.create() as session:
        with pytest.raises(sdk.InvalidArgument) as bad_add:
            session.egress.add("", wait=False)
        assert bad_add.value.field.endswith("host") and bad_add.value.http_status == 400
        cat = session.exec(["cat"])
        cat.resize(10, 10)  # no PTY: the call ends with the error, which the next read raises
        with pytest.raises(sdk.InvalidArgument) as bad_resize:
            cat.wait()
        assert bad_resize.value.field == "resize"


def test_cidr_rules_are_encoded_in_the_path(sg: Sandgate) -> None:
    with sg.sessions.create() as session:
        session.egress.add("10.0.0.0/30", ports=[80], wait=True)
        assert session.egress.remove("10.0.0.0/30", wait=True).egress == ()


def test_wrong_token_is_unauthenticated(sandgate: SandgateProcess) -> None:
    with Sandgate.connect(**{**connect_args(sandgate), "api_token": "wrong", "admin_token": "wrong"}) as sg:
        with pytest.raises(sdk.Unauthenticated):
            sg.sessions.list()
        with pytest.raises(sdk.Unauthenticated):
            sg.decisions.list()


async def test_async_client(sandgate: SandgateProcess, http_upstream: Upstream) -> None:
    port = http_upstream.port
    async with AsyncSandgate.connect(**connect_args(sandgate)) as sg:
        async with await sg.sessions.create(allow=[f"allowed.test:{port}"]) as session:
            assert (await session.run(CURL + f"http://other.test:{port}/")).text == "403"
            change = await session.egress.add("other.test", ports=[port], wait=True)
            assert change.applied
            process = await session.exec(["sh", "-c", f"read -r url; {CURL}$url"])
            await process.write(f"http://other.test:{port}/\n")
            pieces = [piece async for piece in process]
            assert b"".join(p.data for p in pieces) == b"200" and process.exit_code == 0
            follow = sg.decisions.follow(session_id=session.id, verdict="allow")
            requests = await session.exec(f"while :; do {CURL}http://allowed.test:{port}/; sleep 0.2; done")
            async for decision in follow:
                if decision.host == "allowed.test":
                    break
            await follow.aclose()
            await requests.kill()
            assert (await requests.wait()).exit_code == 128 + signal.SIGKILL
        with pytest.raises(sdk.NotFound):
            await sg.sessions.get(session.id)


def _read_until(process: sdk.Process, needle: bytes) -> bool:
    seen = b""
    for piece in process:
        seen += piece.data
        if needle in seen:
            return True
    return False
