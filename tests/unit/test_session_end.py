"""When a session is over: its TTL, its idle timeout, and never while its create is still running."""

from __future__ import annotations

from control_plane.domain.session import Limits, Session, State


def session(state: State, expires_at: float = 100.0, idle: int = 0) -> Session:
    return Session("s-1", state, "n", "img", 0.0, expires_at, (), Limits(512, 1.0, 512), idle_timeout_s=idle)


def test_a_ready_session_ends_at_its_ttl_and_when_idle() -> None:
    assert session(State.READY).is_over(now=99.0, last_active=99.0) == ""
    assert session(State.READY).is_over(now=100.0, last_active=99.0) == "expired"
    assert session(State.READY, idle=10).is_over(now=50.0, last_active=40.0) == "idle"


def test_a_pending_session_is_left_to_its_create_even_past_its_ttl() -> None:
    assert session(State.PENDING).is_over(now=500.0, last_active=0.0) == ""
    assert session(State.PENDING, idle=1).is_over(now=50.0, last_active=0.0) == ""
