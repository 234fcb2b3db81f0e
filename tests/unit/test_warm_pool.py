"""WarmPool over the in-memory runtime: it fills to its size, hands out only sandboxes that fit the request,
refills, forgets and removes one that died, and removes every sandbox it still holds when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from control_plane.domain.session import Limits
from control_plane.errors import Unavailable
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.runtime import ContainerSpec
from tests.support.core import IMAGE, LIMITS, NODE, wait_for
from tests.support.no_sandbox import NoSandboxRuntime


@dataclass
class Pooled:
    pool: WarmPool
    runtime: NoSandboxRuntime
    sessions_dir: Path


def pool_of(size: int, tmp_path: Path, runtime: NoSandboxRuntime) -> Pooled:
    forwarder = tmp_path / "sandgate-forward"
    forwarder.write_bytes(b"")
    sessions = tmp_path / "sessions"
    sessions.mkdir()

    def spec_for(session_id: str) -> ContainerSpec:
        return ContainerSpec(session_id, NODE, IMAGE, LIMITS, sessions / session_id, 3128)

    return Pooled(WarmPool(runtime, size, spec_for, forwarder), runtime, sessions)


@pytest.fixture()
async def pooled(tmp_path: Path) -> AsyncIterator[Pooled]:
    p = pool_of(2, tmp_path, NoSandboxRuntime())
    p.pool.start()
    yield p
    await p.pool.stop()


async def test_fills_to_its_size_with_mounted_directories_and_no_token(pooled: Pooled) -> None:
    await wait_for(lambda: pooled.pool.available == 2)
    assert len(pooled.runtime.containers) == 2
    for session_id in pooled.runtime.containers:
        directory = pooled.sessions_dir / session_id
        assert (directory / "sandgate-forward").exists() and not (directory / "token").exists()


async def test_claims_only_what_fits_and_refills(pooled: Pooled) -> None:
    await wait_for(lambda: pooled.pool.available == 2)
    assert pooled.pool.claim("other:image", LIMITS, True) is None
    assert pooled.pool.claim(IMAGE, Limits(1024, 1.0, 1024), True) is None
    assert pooled.pool.claim(IMAGE, LIMITS, env_empty=False) is None
    claimed = pooled.pool.claim(IMAGE, LIMITS, True)
    assert claimed is not None and claimed[1] == pooled.runtime.containers[claimed[0]].container_id
    await wait_for(lambda: pooled.pool.available == 2)
    assert len(pooled.runtime.containers) == 3  # the claimed one is the session's now


async def test_a_pooled_sandbox_that_died_is_forgotten_removed_and_replaced(pooled: Pooled) -> None:
    await wait_for(lambda: pooled.pool.available == 2)
    dead = next(iter(pooled.runtime.containers))
    assert pooled.pool.discard(dead) and not pooled.pool.discard(dead)
    await wait_for(lambda: dead in pooled.runtime.removed and pooled.pool.available == 2)
    assert not (pooled.sessions_dir / dead).exists()


async def test_stop_removes_the_sandboxes_it_holds_and_the_one_starting(tmp_path: Path) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(spec: ContainerSpec) -> None:
        started.set()
        await release.wait()

    p = pool_of(1, tmp_path, NoSandboxRuntime(on_start=hold))
    p.pool.start()
    await started.wait()
    stopping = asyncio.create_task(p.pool.stop())
    release.set()
    await stopping
    assert p.runtime.containers == {} and len(p.runtime.removed) == 1
    assert list(p.sessions_dir.iterdir()) == []


async def test_a_start_that_fails_leaves_no_directory(tmp_path: Path) -> None:
    p = pool_of(1, tmp_path, NoSandboxRuntime(fail_start=Unavailable("docker is away")))
    p.pool.start()
    try:
        await wait_for(lambda: not p.pool._starting and not any(p.sessions_dir.iterdir()))
        assert p.pool.available == 0 and p.runtime.containers == {}
    finally:
        await p.pool.stop()


async def test_size_zero_starts_nothing(tmp_path: Path) -> None:
    p = pool_of(0, tmp_path, NoSandboxRuntime())
    p.pool.start()
    assert p.pool.claim(IMAGE, LIMITS, True) is None
    await p.pool.stop()
    assert p.runtime.containers == {}
