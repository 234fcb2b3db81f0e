"""Each session's inspection CAs, kept by the control plane, and the trust bundle its sandbox reads.

A session gets a CA when it first inspects a name; a later inspected name that no CA of the session
permits gets a new CA (constraints cannot be widened), and the bundle then holds every CA of the
session, so a process that read an older bundle still trusts the names it had. The CAs' keys stay in
`<state_dir>/inspect/` (0600, root only); leaf keys exist only in memory here and in Envoy (over SDS).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from control_plane.domain.session import Session
from control_plane.inspection.ca import Leaf, SessionCA, issue_leaf, new_session_ca
from control_plane.secrets import write_private

BUNDLE_NAME = "ca-bundle.pem"
SANDBOX_BUNDLE = "/run/sandgate/" + BUNDLE_NAME
LIFETIME_MARGIN_S = 3600  # a CA outlives its session by this much; leaves end with the session


class SessionAuthorities:
    def __init__(
        self,
        state_dir: Path,
        session_dir: Callable[[str], Path],
        system_bundle: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = state_dir
        self._session_dir = session_dir
        self._system = system_bundle
        self._clock = clock
        self._leaves: dict[tuple[str, str], Leaf] = {}

    def leaves(self, session: Session, names: tuple[str, ...]) -> dict[str, Leaf]:
        """A leaf for each name, from a CA of this session that permits it (made if none does)."""
        if not names:
            return {}
        cas = self._cas_covering(session, names)
        out = {}
        for name in names:
            ca = next(c for c in cas if c.permits(name))
            key = (session.id, name)
            leaf = self._leaves.get(key)
            if leaf is None or not leaf.chain_pem.endswith(ca.cert_pem):
                leaf = self._leaves[key] = issue_leaf(ca, name, session.expires_at, self._clock())
            out[name] = leaf
        return out

    def has_bundle(self, session_id: str) -> bool:
        return self._ca_file(session_id).exists()

    def forget(self, session_id: str) -> None:
        """The session ended: its CAs' keys go (the bundle goes with the session's directory)."""
        self._ca_file(session_id).unlink(missing_ok=True)
        for key in [k for k in self._leaves if k[0] == session_id]:
            del self._leaves[key]

    def cas(self, session_id: str) -> list[SessionCA]:
        path = self._ca_file(session_id)
        if not path.exists():
            return []
        return [
            SessionCA(c["cert"].encode(), c["key"].encode(), tuple(c["names"])) for c in json.loads(path.read_text())
        ]

    def _cas_covering(self, session: Session, names: tuple[str, ...]) -> list[SessionCA]:
        cas = self.cas(session.id)
        missing = [n for n in names if not any(c.permits(n) for c in cas)]
        if missing:
            now = self._clock()
            cas.append(new_session_ca(session.id, missing, session.expires_at + LIFETIME_MARGIN_S, now))
            self._save(session.id, cas)
        self._write_bundle(session.id, cas)
        return cas

    def _save(self, session_id: str, cas: list[SessionCA]) -> None:
        self._dir.mkdir(mode=0o700, exist_ok=True)
        doc = [{"cert": c.cert_pem.decode(), "key": c.key_pem.decode(), "names": list(c.names)} for c in cas]
        write_private(self._ca_file(session_id), json.dumps(doc).encode())

    def _write_bundle(self, session_id: str, cas: list[SessionCA]) -> None:
        """System CAs, then the session's: readable by the sandbox's user (public certificates only)."""
        directory = self._session_dir(session_id)
        if not directory.is_dir():
            return
        data = self._system.rstrip(b"\n") + b"\n" + b"".join(c.cert_pem for c in cas)
        path = directory / BUNDLE_NAME
        if path.exists() and path.read_bytes() == data:
            return
        tmp = directory / f".{BUNDLE_NAME}.new"
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        tmp.replace(path)

    def _ca_file(self, session_id: str) -> Path:
        return self._dir / f"{session_id}.json"
