"""The live sessions: an in-memory index over the store, the one place both are kept in step."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from control_plane.authz.decide import SessionView
from control_plane.domain import session as sess
from control_plane.domain.session import OnUnlisted, Session, State
from control_plane.errors import FailedPrecondition, NotFound
from control_plane.store import Store


class SessionRegistry:
    """The live sessions by id, over the store: every `save` is committed before the index shows it."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._sessions: dict[str, Session] = {s.id: s for s in store.sessions()}
        self._last_active: dict[str, float] = {}
        self._in_use: dict[str, int] = {}  # running Execs and open tunnels

    def touch(self, session_id: str, when: float | None = None) -> None:
        """Record activity (an egress request, an Exec) for the idle timeout."""
        if session_id in self._sessions:
            self._last_active[session_id] = max(self._last_active.get(session_id, 0.0), when or self._clock())

    def in_use(self, session_id: str, delta: int) -> None:
        """An Exec or a tunnel started (+1) or ended (-1): a session is not idle while one runs."""
        if session_id in self._sessions:
            self._in_use[session_id] = max(0, self._in_use.get(session_id, 0) + delta)
            self.touch(session_id)

    def last_active(self, session: Session) -> float:
        """When the session was last active (seconds since the epoch); now while an Exec or tunnel runs."""
        if self._in_use.get(session.id):
            return self._clock()
        return max(self._last_active.get(session.id, 0.0), session.created_at)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Session:
        """The live session; InvalidArgument for a malformed id, NotFound for an unknown one."""
        sess.validate_session_id(session_id)
        found = self._sessions.get(session_id)
        if found is None:
            raise NotFound(f"session {session_id} does not exist (it may have ended or expired)")
        return found

    def ready(self, session_id: str) -> Session:
        """The session, if READY: NotFound if unknown, FailedPrecondition (with why it failed) otherwise."""
        session = self.get(session_id)
        if session.state != State.READY:
            why = f" ({session.failure_reason})" if session.failure_reason else ""
            raise FailedPrecondition(f"session {session_id} is {session.state.value}{why}, not READY")
        return session

    def find(self, session_id: str) -> Session | None:
        """The live session, or None."""
        return self._sessions.get(session_id)

    def all(self) -> list[Session]:
        """Every live session."""
        return list(self._sessions.values())

    def matching(self, selector: Mapping[str, str] | None = None) -> list[Session]:
        """The live sessions whose labels include every key and value of `selector`."""
        return [s for s in self._sessions.values() if sess.matches_labels(s, selector or {})]

    async def add(self, session: Session) -> Session:
        """A new session: stored, then indexed (what the index shows has been committed). Unavailable when
        the store cannot write it; then it is not indexed either."""
        await self._store.put_session(session)
        self._sessions[session.id] = session
        return session

    async def save(self, session: Session) -> Session:
        """A new state of an indexed session: stored, then indexed. One that was withdrawn, before or while
        it was written, stays withdrawn (its row goes with `forget`). Unavailable when the store cannot write."""
        if session.id not in self._sessions:
            return session
        await self._store.put_session(session)
        if session.id in self._sessions:
            self._sessions[session.id] = session
        return session

    def withdraw(self, session_id: str) -> Session | None:
        """Stop serving a session (ext_authz denies it at once); its row stays until `forget`."""
        self._last_active.pop(session_id, None)
        self._in_use.pop(session_id, None)
        return self._sessions.pop(session_id, None)

    async def forget(self, session_id: str) -> None:
        """Delete a withdrawn session's row. Unavailable when the store cannot write."""
        await self._store.delete_session(session_id)

    def view(self, session_id: str) -> SessionView | None:
        """What ext_authz needs; None for an unknown session (deny)."""
        s = self._sessions.get(session_id)
        if s is None:
            return None
        ready = s.state == State.READY and s.expires_at > self._clock()
        return SessionView(s.id, ready, s.token_id, s.egress, ask=s.on_unlisted == OnUnlisted.ASK)
