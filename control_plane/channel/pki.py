"""The control channel's certificates in the state directory: loaded, or minted when missing or unfit.

Everything lives in one directory (0700, files 0600). The CA's key never leaves it: Envoy gets only its
own certificate and key, and the CA certificate, inside the bootstrap the control plane writes for it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from control_plane.channel.certs import (
    SERVER_NAME,
    KeyPair,
    common_name,
    mint_ca,
    mint_envoy,
    mint_server,
    signed_by,
)
from control_plane.secrets import write_private

log = logging.getLogger(__name__)
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ChannelPki:
    ca: KeyPair
    server: KeyPair
    envoy: KeyPair


def load_or_mint(directory: Path, node_id: str, now: datetime.datetime) -> ChannelPki:
    """The CA, server and Envoy certificates in `directory`; any missing, expiring, or not matching the CA
    and its name (the Envoy one names `node_id`) is minted anew and saved."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = _load(directory, "ca")
    if ca is None or _expiring(ca, now):
        ca = _save(directory, "ca", mint_ca(now))
    server = _load(directory, "server")
    if server is None or not _fit(server, ca, SERVER_NAME, now):
        server = _save(directory, "server", mint_server(ca, now))
    envoy = _load(directory, "envoy")
    if envoy is None or not _fit(envoy, ca, node_id, now):
        envoy = _save(directory, "envoy", mint_envoy(ca, node_id, now))
        log.warning("minted Envoy's client certificate for node %s; an external Envoy needs the new bootstrap", node_id)
    return ChannelPki(ca, server, envoy)


def _fit(pair: KeyPair, ca: KeyPair, name: str, now: datetime.datetime) -> bool:
    cert = pair.cert
    return common_name(cert) == name and signed_by(cert, ca) and not _expiring(pair, now)


def _expiring(pair: KeyPair, now: datetime.datetime) -> bool:
    return pair.cert.not_valid_after_utc - RENEW_BEFORE < now


def _load(directory: Path, name: str) -> KeyPair | None:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    if not cert.exists() or not key.exists():
        return None
    return KeyPair(cert.read_bytes(), key.read_bytes())


def _save(directory: Path, name: str, pair: KeyPair) -> KeyPair:
    write_private(directory / f"{name}-key.pem", pair.key_pem)
    write_private(directory / f"{name}.pem", pair.cert_pem)
    return pair
