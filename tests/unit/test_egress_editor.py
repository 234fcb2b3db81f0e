"""EgressEditor: live edits of one session's rules and of the policy are validated whole, stored, pushed, and
rolled back (store and cache) when Envoy NACKs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.errors import InvalidArgument, NotApplied, NotFound, Rejected
from control_plane.sessions.manager import CreateRequest
from control_plane.xds.types import ROUTE
from tests.support.core import NODE, Core, running_core


@pytest.fixture()
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with running_core(tmp_path / "state") as c:
        yield c


def hosts(core: Core, session_id: str) -> list[str]:
    return [r.host for r in core.egress.rules(session_id)]


def stored_hosts(core: Core, session_id: str) -> list[str]:
    (session,) = [s for s in core.store.sessions() if s.id == session_id]
    return [r.host for r in session.egress]


def route_version(core: Core, session_id: str) -> str:
    return core.cache.snapshot(NODE).of_type(ROUTE)[f"session-{session_id}"].version


async def test_add_replace_and_remove_are_stored_and_applied(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest(egress=[{"host": "allowed.test"}]))
    await core.egress.add(session.id, {"host": "Bücher.Example", "ports": [443]}, wait=5)
    assert hosts(core, session.id) == stored_hosts(core, session.id) == ["allowed.test", "xn--bcher-kva.example"]
    await core.egress.replace(session.id, [{"host": "*.wild.test"}], wait=5)
    assert hosts(core, session.id) == ["*.wild.test"]
    version = route_version(core, session.id)
    assert core.envoy.stream.acked[(ROUTE, f"session-{session.id}")] == version
    await core.egress.remove(session.id, "*.wild.test", wait=None)
    assert hosts(core, session.id) == stored_hosts(core, session.id) == []


async def test_bad_edits_name_the_field_and_change_nothing(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest(egress=[{"host": "allowed.test"}]))
    version = route_version(core, session.id)
    for edit, field in [
        (core.egress.replace(session.id, [{"host": "bad host"}], wait=5), "egress[0].host"),
        (core.egress.add(session.id, {"host": "ok.test", "ports": [0]}, wait=5), "ports"),
        (core.egress.replace(session.id, [{"host": "a" * 60 + f"{i}.test"} for i in range(2000)], wait=5), "egress"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            await edit
        assert err.value.field == field
    with pytest.raises(NotFound) as missing:
        await core.egress.remove(session.id, "missing.test", wait=5)
    assert missing.value.field == "host"
    with pytest.raises(NotFound):
        await core.egress.add("s-0000000000000000", {"host": "a.test"}, wait=5)
    assert hosts(core, session.id) == stored_hosts(core, session.id) == ["allowed.test"]
    assert route_version(core, session.id) == version


async def test_a_nacked_edit_restores_the_last_good_rules_in_store_and_cache(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest(egress=[{"host": "allowed.test"}]))
    good = route_version(core, session.id)
    core.envoy.reject = lambda key: key == (ROUTE, f"session-{session.id}")
    with pytest.raises(Rejected):
        await core.egress.add(session.id, {"host": "other.test"}, wait=5)
    assert hosts(core, session.id) == stored_hosts(core, session.id) == ["allowed.test"]
    assert route_version(core, session.id) == good


async def test_an_edit_not_applied_in_time_is_kept(core: Core) -> None:
    session, _ = await core.manager.create(CreateRequest())
    core.envoy.paused = True
    with pytest.raises(NotApplied):
        await core.egress.add(session.id, {"host": "later.test"}, wait=0.2)
    assert stored_hosts(core, session.id) == ["later.test"]
    core.envoy.resume()
    await core.publisher.wait({NODE: {(ROUTE, f"session-{session.id}"): route_version(core, session.id)}}, 5)


async def test_policy_applies_to_new_sessions_and_a_nacked_policy_is_rolled_back(core: Core) -> None:
    policy = await core.egress.put_policy({"default_egress": [{"host": "allowed.test"}], "deny": ["evil.test"]}, 5)
    assert core.egress.policy() == policy == core.store.policy()
    session, _ = await core.manager.create(CreateRequest(egress=[{"host": "other.test"}]))
    assert set(hosts(core, session.id)) == {"allowed.test", "other.test"}
    core.envoy.reject = lambda key: key[0] == ROUTE
    with pytest.raises(Rejected):
        await core.egress.put_policy({"deny": ["other.test"]}, 5)
    assert core.egress.policy() == policy == core.store.policy()
    core.envoy.reject = lambda key: False
    for bad, field in [({"deny": "x"}, "deny"), ({"deny": ["bad host"]}, "deny[0]"), ({"x": 1}, "x")]:
        with pytest.raises(InvalidArgument) as err:
            await core.egress.put_policy(bad, 5)
        assert err.value.field == field
    assert core.egress.policy() == policy
