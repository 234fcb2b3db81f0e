"""SessionManager over the in-memory runtime and a fake Envoy: create (cold and from the warm pool), teardown,
and every way a create fails, each leaving nothing behind (no row, no container, no directory, no config)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from control_plane.domain.capacity import Usage
from control_plane.domain.session import State
from control_plane.errors import (
    CapacityExhausted,
    InvalidArgument,
    NotApplied,
    Rejected,
    Unavailable,
)
from control_plane.sessions import manager as manager_module
from control_plane.sessions.manager import CreateRequest
from control_plane.sessions.runtime import ContainerSpec
from control_plane.xds.types import LISTENER, ROUTE
from tests.support.core import IMAGE, LIMITS, NODE, Core, running_core, wait_for


@pytest.fixture()
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with running_core(tmp_path / "state") as c:
        yield c


def session_resources(core: Core) -> set[tuple[str, str]]:
    snapshot = core.cache.snapshot(NODE)
    return {(t, n) for t in (LISTENER, ROUTE) for n in snapshot.of_type(t) if n.startswith("session-")}


def assert_nothing_left(core: Core) -> None:
    assert core.registry.all() == [] and core.store.sessions() == []
    assert core.runtime.containers == {}
    assert list(core.settings.sessions_dir.iterdir()) == []
    assert session_resources(core) == set()
    assert core.manager.usage() == Usage()


async def test_cold_create_starts_a_container_with_the_proxy_env_and_a_token_for_this_session(core: Core) -> None:
    session, token = await core.manager.create(CreateRequest(egress=[{"host": "allowed.test"}], env={"A": "1"}))
    assert session.state == State.READY and session.container_id == f"none-{session.id}"
    assert [r.host for r in session.egress] == ["allowed.test"]
    spec = core.runtime.containers[session.id].spec
    assert (spec.image, spec.limits, spec.node_id) == (IMAGE, LIMITS, NODE)
    assert spec.env["A"] == "1" and spec.env["HTTP_PROXY"] == f"http://sandgate:{token}@127.0.0.1:3128"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sid"], claims["jti"]) == (session.id, session.token_id)
    assert (core.settings.socket_dir(session.id) / "token").read_text() == token
    assert core.store.sessions() == [session]
    assert session_resources(core) == {(LISTENER, f"session-{session.id}"), (ROUTE, f"session-{session.id}")}


async def test_warm_create_claims_a_pooled_sandbox_instead_of_starting_one(tmp_path: Path) -> None:
    async with running_core(tmp_path / "state", warm_pool_size=1) as core:
        core.pool.start()
        await wait_for(lambda: core.pool.available == 1)
        (pooled,) = core.runtime.containers
        session, token = await core.manager.create(CreateRequest())
        assert (session.id, session.container_id) == (pooled, f"none-{pooled}")
        assert (core.settings.socket_dir(session.id) / "token").read_text() == token
        assert core.runtime.containers[session.id].spec.env == {}  # started before any session existed
        await wait_for(lambda: core.pool.available == 1)  # the pool refills
        refill = next(sid for sid in core.runtime.containers if sid != pooled)
        with_env, _ = await core.manager.create(CreateRequest(env={"A": "1"}))
        assert with_env.id != refill and core.pool.available == 1  # env: never a pooled sandbox


async def test_delete_revokes_removes_and_forgets_and_is_idempotent(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest())
    await core.manager.delete(session.id)
    assert_nothing_left(core)
    assert core.runtime.removed == [session.id]
    await core.manager.delete(session.id)
    await core.manager.delete("s-0000000000000000")
    with pytest.raises(InvalidArgument) as err:
        await core.manager.delete("../etc")
    assert err.value.field == "session_id"


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 10**7}, "ttl_seconds"),
        ({"image": "no-such-image:never"}, "image"),
        ({"egress": [{"host": "bad host.test"}]}, "egress[0].host"),
        ({"egress": [{"host": "a" * 60 + f"{i}.test"} for i in range(2000)]}, "egress"),
        ({"pids": 10}, "limits.pids"),
        ({"env": {"HTTP_PROXY": "http://evil"}}, "env"),
        ({"labels": {"bad key!": "x"}}, "labels"),
    ],
)
async def test_invalid_create_names_the_field_and_creates_nothing(
    core: Core, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await core.manager.create(CreateRequest(**request_fields))  # type: ignore[arg-type]
    assert err.value.field is not None and err.value.field.startswith(field)
    assert_nothing_left(core)


async def test_capacity_is_checked_before_anything_is_created(core: Core) -> None:
    for _ in range(4):
        await core.manager.create(CreateRequest())
    started = dict(core.runtime.containers)
    with pytest.raises(CapacityExhausted) as err:
        await core.manager.create(CreateRequest())
    assert "at most 4 sessions" in err.value.message
    assert core.runtime.containers == started and len(core.registry) == 4


async def test_a_listener_envoy_rejects_fails_the_create_and_leaves_nothing(core: Core) -> None:
    core.envoy.reject = lambda key: key[0] == LISTENER
    with pytest.raises(Rejected):
        await core.manager.create(CreateRequest())
    assert_nothing_left(core)
    assert len(core.runtime.removed) == 1  # the container started beside the listener, and was removed


async def test_a_listener_envoy_does_not_apply_in_time_fails_the_create_and_leaves_nothing(core: Core) -> None:
    core.publisher.apply_timeout = 0.2
    core.envoy.paused = True
    with pytest.raises(NotApplied) as err:
        await core.manager.create(CreateRequest())
    assert "session-" in err.value.message
    core.envoy.resume()
    assert_nothing_left(core)


async def test_without_an_envoy_the_create_is_unavailable_and_leaves_nothing(tmp_path: Path) -> None:
    async with running_core(tmp_path / "state") as core:
        await core.cache.detach(core.envoy.stream)
        core.publisher.apply_timeout = 0.2
        with pytest.raises(Unavailable) as err:
            await core.manager.create(CreateRequest())
        assert "no Envoy" in err.value.message
        assert_nothing_left(core)


async def test_a_listener_socket_that_never_appears_fails_the_create(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "SOCKET_WAIT_S", 0.2)
    core.envoy.open_sockets = False
    with pytest.raises(Unavailable) as err:
        await core.manager.create(CreateRequest())
    assert "listener socket" in err.value.message
    assert_nothing_left(core)


async def test_a_runtime_that_cannot_start_fails_the_create_and_leaves_nothing(core: Core) -> None:
    core.runtime.fail_start = Unavailable("docker is away")
    with pytest.raises(Unavailable, match="docker is away"):
        await core.manager.create(CreateRequest())
    assert_nothing_left(core)


async def test_a_create_cancelled_mid_start_waits_for_the_container_and_removes_it(core: Core) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(spec: ContainerSpec) -> None:
        started.set()
        await release.wait()

    core.runtime.on_start = hold
    creating = asyncio.create_task(core.manager.create(CreateRequest()))
    await started.wait()
    (session_id,) = core.runtime.containers
    creating.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await creating
    assert_nothing_left(core)
    assert core.runtime.removed == [session_id]


async def test_an_expired_session_is_ended_by_the_expiry_loop(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest(ttl_seconds=60))
    core.clock.now = session.expires_at
    expiring = asyncio.create_task(core.manager.expire_loop(interval=0.01))
    try:
        await wait_for(lambda: len(core.registry) == 0)
    finally:
        expiring.cancel()
        with pytest.raises(asyncio.CancelledError):
            await expiring
    await wait_for(lambda: not session_resources(core))
    assert_nothing_left(core)


async def test_republish_restores_ready_sessions_into_an_empty_cache(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest())
    core.cache._snapshots.clear()
    core.publisher.ensure_node(NODE)
    core.manager.republish()
    assert (LISTENER, f"session-{session.id}") in session_resources(core)
