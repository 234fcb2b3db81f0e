"""What the xDS publisher needs to render inspection: leaves, the credentials' header values, the upstream trust."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from control_plane.credentials.secret import Injection
from control_plane.domain.session import Session
from control_plane.errors import InvalidArgument
from control_plane.inspection.authority import SessionAuthorities
from control_plane.inspection.ca import Leaf

Credentials = Callable[[], Mapping[str, Injection]]


class InspectionSources:
    def __init__(self, authorities: SessionAuthorities, trusted_ca: str, credentials: Credentials) -> None:
        self.authorities = authorities
        self._trusted_ca = trusted_ca
        self._credentials = credentials

    def leaves(self, session: Session, names: tuple[str, ...]) -> Mapping[str, Leaf]:
        return self.authorities.leaves(session, names)

    def credentials(self) -> Mapping[str, Injection]:
        """Each stored secret by name: its header, that header's value, its placeholder."""
        return self._credentials()

    def trusted_ca(self) -> str:
        return self._trusted_ca

    def has_bundle(self, session_id: str) -> bool:
        return self.authorities.has_bundle(session_id)

    def forget(self, session_id: str) -> None:
        self.authorities.forget(session_id)


def read_trust(system_file: str, extra_files: Sequence[str]) -> tuple[bytes, str]:
    """The system CA bundle (PEM), and the upstream trust store: the system's CAs and the extra ones.

    InvalidArgument naming the setting if a file cannot be read or holds no certificate."""
    system = _read_pem(system_file, "system_ca_file")
    extra = [_read_pem(f, "upstream_ca_files") for f in extra_files]
    return system, b"\n".join([system, *extra]).decode()


def _read_pem(name: str, field: str) -> bytes:
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {name}: {exc.strerror}", field=field) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InvalidArgument(f"{name} holds no PEM certificate", field=field)
    return data
