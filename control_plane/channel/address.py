"""Where the control plane serves its Envoy: a unix socket (the default) or TCP (then with mutual TLS). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from control_plane.errors import InvalidArgument

UNIX_PREFIX = "unix:"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its terminating NUL


@dataclass(frozen=True)
class ControlAddress:
    """Either `path` (a unix socket) or `host` and `port`."""

    path: Path | None = None
    host: str = ""
    port: int = 0

    @property
    def grpc_target(self) -> str:
        """The address in gRPC's spelling (`unix:/abs/path` or `host:port`)."""
        return f"{UNIX_PREFIX}{self.path}" if self.path else f"{self.host}:{self.port}"

    def with_port(self, port: int) -> ControlAddress:
        """The same TCP address with the port the server really bound (for a configured port 0)."""
        return self if self.path else ControlAddress(host=self.host, port=port)


def parse_control_address(addr: str, field: str) -> ControlAddress:
    """`unix:/absolute/path` or `HOST:PORT`. Raises InvalidArgument naming `field`."""
    if addr.startswith(UNIX_PREFIX):
        return ControlAddress(path=socket_path(addr.removeprefix(UNIX_PREFIX), field))
    host, port = split_addr(addr, field)
    return ControlAddress(host=host, port=port)


def socket_path(raw: str, field: str) -> Path:
    """An absolute unix socket path short enough to bind. Raises InvalidArgument naming `field`."""
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidArgument(f"{raw!r} is not an absolute path", field=field)
    if len(str(path).encode()) > MAX_SOCKET_PATH:
        raise InvalidArgument(f"a unix socket path is at most {MAX_SOCKET_PATH} bytes", field=field)
    return path


def split_addr(addr: str, field: str) -> tuple[str, int]:
    """`HOST:PORT` into its parts. Raises InvalidArgument naming `field`."""
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"{addr!r} is not HOST:PORT", field=field)
    return host, int(port)
