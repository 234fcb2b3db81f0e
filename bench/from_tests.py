"""The one door from the benchmarks into the tests' support code: the control plane as a subprocess or over the
in-memory runtime, the tests' DNS server, upstreams and Envoy admin client. Benchmarks measure the same stack the
tests prove, so they share these pieces rather than keep copies; every other bench module imports them from here."""

from __future__ import annotations

from tests.support.dns import DnsServer
from tests.support.envoy_admin import envoy_admin_get
from tests.support.no_sandbox import NoSandboxRuntime
from tests.support.service import SandgateProcess, free_port
from tests.support.stream_servers import StreamServer
from tests.support.upstream import EnvoyUpstream, Upstream

__all__ = [
    "DnsServer",
    "EnvoyUpstream",
    "NoSandboxRuntime",
    "SandgateProcess",
    "StreamServer",
    "Upstream",
    "envoy_admin_get",
    "free_port",
]
