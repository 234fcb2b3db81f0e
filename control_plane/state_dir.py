"""The state directory, made ready before anything is wired: every side effect on disk happens here.

Its directories are root's and 0700 (tokens, keys, databases, every session's socket and token); the API
tokens are loaded or written; the sandbox forwarder is installed where session directories link it from;
the channel's certificates (TCP only) are loaded or minted; the session store and the decision journal are
opened, and the store holds a signing key; the secrets' vault and its key are opened (made on first start),
the inspection CAs' directory made, and the CA files of HTTPS inspection read. `StateDir.close` closes what
was opened.
"""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from control_plane.audit.journal import DecisionJournal
from control_plane.channel.pki import ChannelPki, load_or_mint
from control_plane.config import Settings
from control_plane.credentials.vault import SecretVault
from control_plane.errors import FailedPrecondition
from control_plane.inspection.sources import read_trust
from control_plane.secrets import load_or_create_token
from control_plane.sessions import socket_dir
from control_plane.sessions.keyring import ensure_signing_key
from control_plane.store import Store
from control_plane.xds.rendered_store import RenderedFile
from control_plane.xds.serialize import SERIALIZER


@dataclass(frozen=True)
class StateDir:
    """What the state directory holds, ready to use: tokens, the installed forwarder, the channel's
    certificates (None on a unix socket), the open session store and decision journal; for HTTPS inspection,
    the secrets' vault, where the sessions' CAs are kept, the system's CA bundle (PEM) and the upstream trust
    store (the system's CAs and `upstream_ca_files`, PEM)."""

    api_token: str
    admin_token: str
    forwarder: Path
    pki: ChannelPki | None
    store: Store
    journal: DecisionJournal
    vault: SecretVault
    inspect_dir: Path
    system_bundle: bytes
    upstream_trust: str

    def close(self) -> None:
        """Close the journal (after writing what it holds), the store and the rendered-config cache."""
        self.journal.close()
        self.store.close()
        SERIALIZER.detach()


def installed_forwarder(settings: Settings) -> Path:
    """Where the forwarder is installed; each session's directory hard-links it from there."""
    return settings.state_dir / "bin" / "sandgate-forward"


def prepare_state_dir(settings: Settings) -> StateDir:
    """Make the state directory ready. Raises FailedPrecondition (field forwarder_binary) if the forwarder was
    never built, InvalidArgument (field system_ca_file or upstream_ca_files) for a CA file it cannot read, OSError
    for a directory it cannot make, and Unavailable for a database it cannot open. The journal's lost writes
    are counted by `lost` once set (`StateDir.journal.lost`)."""
    _make_private_dirs(settings)
    system_bundle, upstream_trust = read_trust(settings.system_ca_file, settings.upstream_ca_files)
    vault = SecretVault(settings.state_dir / "secrets", secrets_key_file(settings))
    SERIALIZER.attach(RenderedFile(settings.envoy_dir / "rendered.db"))  # a restart re-serializes nothing
    api_token = load_or_create_token(settings.api_token, settings.state_dir / "api-token")
    admin_token = load_or_create_token(settings.admin_token, settings.state_dir / "admin-token")
    forwarder = _install_forwarder(settings)
    pki = _channel_pki(settings)
    store = Store(settings.database)
    try:
        ensure_signing_key(store, time.time())
        journal = DecisionJournal(
            settings.state_dir / "decisions.db", settings.decision_retention, settings.decision_retention_per_session
        )
    except BaseException:
        store.close()
        raise
    return StateDir(api_token, admin_token, forwarder, pki, store, journal, vault, inspect_dir(settings),
                    system_bundle, upstream_trust)  # fmt: skip


def secrets_key_file(settings: Settings) -> Path:
    """The key that encrypts stored secrets: `secrets_key_file`, or `<state_dir>/keys/secrets.key`."""
    return Path(settings.secrets_key_file) if settings.secrets_key_file else settings.state_dir / "keys" / "secrets.key"


def inspect_dir(settings: Settings) -> Path:
    """Where each session's inspection CAs (certificates and keys) are kept: root only."""
    return settings.state_dir / "inspect"


def _make_private_dirs(settings: Settings) -> None:
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.chmod(0o700)  # tokens, keys, databases and every session's socket and token: root only
    socket_dir.prepare_root(state / "sessions")
    settings.envoy_dir.mkdir(exist_ok=True, mode=0o700)
    settings.envoy_dir.chmod(0o700)  # Envoy's admin socket, the xDS socket, the bootstrap: root only
    inspect_dir(settings).mkdir(exist_ok=True, mode=0o700)
    inspect_dir(settings).chmod(0o700)  # the sessions' inspection CAs and their keys


def _install_forwarder(settings: Settings) -> Path:
    src = settings.forwarder_binary
    if not src.exists():
        raise FailedPrecondition(f"the sandbox forwarder {src} is missing: building the package compiles it "
                                 "(in a checkout, scripts/setup.sh does)", field="forwarder_binary")  # fmt: skip
    dst = installed_forwarder(settings)
    dst.parent.mkdir(exist_ok=True)
    tmp = dst.with_suffix(".new")
    shutil.copy2(src, tmp)
    tmp.chmod(0o755)
    tmp.replace(dst)
    return dst


def _channel_pki(settings: Settings) -> ChannelPki | None:
    """Over TCP, Envoy and the control plane authenticate each other with certificates kept in the state dir."""
    if settings.control_address.path is not None:
        return None
    return load_or_mint(settings.state_dir / "tls", settings.node_id, datetime.datetime.now(datetime.UTC))
