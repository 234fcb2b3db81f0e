"""Escape attempts, each made from inside a real gVisor sandbox, each asserting that it was blocked
(with Sandgate's reason where one applies). The session may reach only allowed.test on the upstream's
port, *.wild.test, and private.test (which resolves to a forbidden address)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import SandgateClient
from tests.support.netns import OUTSIDE_ADDR
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

PROBE = (Path(__file__).parent / "raw_probe.py").read_bytes()


@pytest.fixture(scope="module")
def jail(sandgate: SandgateProcess, http_upstream: Upstream, outside_host: str) -> dict[str, object]:
    client = SandgateClient(sandgate)
    port = http_upstream.port
    rules = [
        {"host": "allowed.test", "ports": [port]},
        {"host": "*.wild.test", "ports": [port]},
        {"host": "private.test", "ports": [8080]},
        {"host": "get-only.test", "ports": [port], "methods": ["GET"]},
    ]
    session = client.create(egress=rules)
    client.sh(session.id, "cat > /tmp/probe.py", stdin=PROBE)
    yield {"client": client, "id": session.id, "port": port, "token": session.token}
    client.cleanup()


def sh(jail: dict[str, object], script: str) -> tuple[int, str]:
    client = jail["client"]
    assert isinstance(client, SandgateClient)
    code, out, err = client.sh(str(jail["id"]), script)
    return code, out + err


def raw(jail: dict[str, object], payload: str) -> dict[str, object]:
    client = jail["client"]
    assert isinstance(client, SandgateClient)
    stdin = json.dumps({"cases": {"x": payload}}).encode()
    result = client.exec(str(jail["id"]), ["python3", "/tmp/probe.py"], stdin=stdin, timeout_seconds=30)
    return json.loads(result.stdout)["x"]  # type: ignore[no-any-return]


def get(target: str, host: str) -> str:
    """A plain-HTTP proxy request with this session's credentials."""
    return f"GET {target} HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Basic TOKEN\r\n\r\n"


def py_connect(host: str, port: int, family: str = "AF_INET", kind: str = "SOCK_STREAM") -> str:
    return (
        f'python3 -c "import socket\ns=socket.socket(socket.{family}, socket.{kind})\ns.settimeout(3)\n'
        f"try:\n s.connect(('{host}', {port})); s.send(b'x'); print('CONNECTED')\n"
        "except OSError as e: print('BLOCKED', e)\""
    )


# ---- the network layer: no way out but the listener -------------------------------------------------


def test_01_direct_tcp_to_outside_host(jail: dict[str, object]) -> None:
    assert "BLOCKED" in sh(jail, py_connect(OUTSIDE_ADDR, 8080))[1]


def test_02_direct_udp_to_outside_host(jail: dict[str, object]) -> None:
    assert "BLOCKED" in sh(jail, py_connect(OUTSIDE_ADDR, 53, kind="SOCK_DGRAM"))[1]


def test_03_host_loopback_service(jail: dict[str, object]) -> None:
    assert "BLOCKED" in sh(jail, py_connect("127.0.0.1", int(str(jail["port"]))))[1]


def test_04_ipv6_loopback_service(jail: dict[str, object]) -> None:
    assert "BLOCKED" in sh(jail, py_connect("::1", int(str(jail["port"])), family="AF_INET6"))[1]


def test_05_raw_socket_needs_a_capability(jail: dict[str, object]) -> None:
    out = sh(jail, py_connect(OUTSIDE_ADDR, 0, kind="SOCK_RAW"))[1]
    assert "BLOCKED" in out or "Operation not permitted" in out or "PermissionError" in out


def test_06_dns_from_inside_goes_nowhere(jail: dict[str, object]) -> None:
    _, out = sh(jail, "getent hosts allowed.test; echo rc=$?")
    assert "127.0.0.1" not in out.split("rc=")[0] and "rc=0" not in out


def test_07_no_docker_socket_or_host_paths(jail: dict[str, object]) -> None:
    paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd", "/var/lib/sandgate", "/var/lib/docker"]
    out = sh(jail, f'python3 -c "import os; print([os.path.exists(p) for p in {paths}])"; cat /proc/1/cmdline')[1]
    assert out.startswith(str([False] * len(paths))) and "sandgate-forward" in out


def test_08_rootfs_is_read_only(jail: dict[str, object]) -> None:
    assert "Read-only file system" in sh(jail, "echo x > /var/tmp/x")[1]


def test_09_cannot_become_root(jail: dict[str, object]) -> None:
    out = sh(jail, "python3 -c 'import os; os.setuid(0)' 2>&1; su -c id root </dev/null 2>&1; id -u")[1]
    assert "PermissionError" in out and out.strip().endswith("65534")


def test_10_no_namespaces_or_mounts(jail: dict[str, object]) -> None:
    out = sh(jail, "unshare -n true 2>&1; mount -t tmpfs x /tmp/m 2>&1; echo done")[1]
    assert "Operation not permitted" in out or "permission denied" in out.lower()


def test_11_kernel_is_gvisor(jail: dict[str, object]) -> None:
    assert "gVisor" in sh(jail, "dmesg 2>&1 | head -3")[1]


# ---- the proxy: only allowlisted destinations, only with this session's token ------------------------


def test_12_host_not_on_the_list(jail: dict[str, object]) -> None:
    r = raw(jail, "GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\nProxy-Authorization: Basic TOKEN\r\n\r\n")
    assert (r["status"], r["reason"]) == (403, "host-not-allowed")


def test_13_connect_to_host_not_on_the_list(jail: dict[str, object]) -> None:
    r = raw(jail, "CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\nProxy-Authorization: Basic TOKEN\r\n\r\n")
    assert (r["status"], r["reason"]) == (403, "host-not-allowed")


def test_14_connect_to_allowed_host_on_other_port(jail: dict[str, object]) -> None:
    r = raw(
        jail, "CONNECT allowed.test:22 HTTP/1.1\r\nHost: allowed.test:22\r\nProxy-Authorization: Basic TOKEN\r\n\r\n"
    )
    assert (r["status"], r["reason"]) == (403, "host-not-allowed")


@pytest.mark.parametrize(
    "authority", [f"{OUTSIDE_ADDR}:8080", "127.0.0.1:{port}", "[::1]:{port}", "2130706433:{port}", "0x7f000001:{port}"]
)
def test_15_ip_literals_and_numeric_hosts(jail: dict[str, object], authority: str) -> None:
    target = authority.format(port=jail["port"])
    for verb in ("GET http://" + target + "/", "CONNECT " + target):
        r = raw(jail, f"{verb} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic TOKEN\r\n\r\n")
        assert (r["status"], r["reason"]) == (403, "host-not-allowed"), (verb, r)


def test_16_absolute_uri_and_host_header_disagree(jail: dict[str, object]) -> None:
    """Envoy routes by the absolute URI and, as RFC 9112 3.2.2 requires of a proxy, replaces the Host
    header with it: a disagreeing Host never decides a route and never reaches an upstream."""
    port = jail["port"]
    r = raw(jail, f"GET http://other.test:{port}/ HTTP/1.1\r\nHost: allowed.test:{port}\r\n"
                  "Proxy-Authorization: Basic TOKEN\r\n\r\n")  # fmt: skip
    assert (r["status"], r["reason"]) == (403, "host-not-allowed"), r  # routed by the URI, never by Host
    r = raw(jail, f"GET http://allowed.test:{port}/ HTTP/1.1\r\nHost: other.test\r\n"
                  "Proxy-Authorization: Basic TOKEN\r\n\r\n")  # fmt: skip
    assert r["status"] == 200 and json.loads(str(r["body"]))["headers"]["host"] == f"allowed.test:{port}"


def test_17_userinfo_trick_reaches_the_real_host(jail: dict[str, object]) -> None:
    out = sh(jail, f"curl -s -o /dev/null -w '%{{http_code}}' 'http://allowed.test:{jail['port']}@other.test/'")[1]
    assert out == "403"


@pytest.mark.parametrize("host", ["other.test.", "OTHER.TEST", "other.test%2F", "allowed.test.other.test"])
def test_18_host_spelling_tricks(jail: dict[str, object], host: str) -> None:
    r = raw(jail, f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Basic TOKEN\r\n\r\n")
    assert r["status"] in (400, 403) and not r["reached_upstream"], r


def test_19_relative_request_with_other_host(jail: dict[str, object]) -> None:
    r = raw(jail, "GET / HTTP/1.1\r\nHost: other.test\r\nProxy-Authorization: Basic TOKEN\r\n\r\n")
    assert r["status"] == 403 and not r["reached_upstream"]


def test_20_wildcard_does_not_cover_apex(jail: dict[str, object]) -> None:
    port = jail["port"]
    r = raw(
        jail,
        f"GET http://wild.test:{port}/ HTTP/1.1\r\nHost: wild.test:{port}\r\nProxy-Authorization: Basic TOKEN\r\n\r\n",
    )
    assert (r["status"], r["reason"]) == (403, "host-not-allowed")


def test_21_method_not_allowed(jail: dict[str, object]) -> None:
    port = jail["port"]
    r = raw(jail, f"DELETE http://get-only.test:{port}/ HTTP/1.1\r\nHost: get-only.test:{port}\r\n"
                  "Proxy-Authorization: Basic TOKEN\r\n\r\n")  # fmt: skip
    assert (r["status"], r["reason"]) == (403, "method-not-allowed")


def test_22_allowlisted_name_resolving_to_a_private_address(jail: dict[str, object]) -> None:
    r = raw(
        jail,
        "GET http://private.test:8080/ HTTP/1.1\r\nHost: private.test:8080\r\nProxy-Authorization: Basic TOKEN\r\n\r\n",
    )
    assert (r["status"], r["reason"]) == (403, "destination-ip-forbidden")


def test_23_pipelined_second_request_to_other_host(jail: dict[str, object]) -> None:
    port = jail["port"]
    first = get(f"http://allowed.test:{port}/", f"allowed.test:{port}")
    second = "GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\nProxy-Authorization: Basic TOKEN\r\n\r\n"
    r = raw(jail, first + second)
    assert "host-not-allowed" in str(r["body"])  # the second answer on the same connection is the denial


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("cl-and-te", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        ("obs-fold", "X-Folded: a\r\n b\r\nX-Smuggle: 1\r\n"),
        ("oversized", "X-Big: " + "a" * 70000 + "\r\n"),
        ("bad-te", "Transfer-Encoding: gzip, chunked, identity\r\n"),
    ],
)
def test_24_request_smuggling_shapes(jail: dict[str, object], name: str, headers: str) -> None:
    port = jail["port"]
    r = raw(jail, f"POST http://allowed.test:{port}/ HTTP/1.1\r\nHost: allowed.test:{port}\r\n"
                  f"Proxy-Authorization: Basic TOKEN\r\n{headers}\r\n0\r\n\r\n")  # fmt: skip
    if name == "obs-fold":  # RFC 9112 5.2: unfolded into one line before forwarding, never passed on folded
        echoed, _ = json.JSONDecoder().raw_decode(str(r["body"]))
        assert echoed["headers"]["x-folded"] == "a b"
        return
    assert r["status"] in (400, 413, 431, 501, None) and not r["reached_upstream"], (name, r)
    client = jail["client"]
    assert isinstance(client, SandgateClient)
    _, body = client.proc.admin("GET", f"/v1/decisions?session_id={jail['id']}&limit=1000")
    refused = [d for d in body["decisions"] if d["response_code"] in (400, 413, 431, 501)]
    assert refused and all((d["verdict"], d["reason"]) == ("deny", "bad-request") for d in refused), refused


def test_25_token_smuggled_in_the_internal_header(jail: dict[str, object]) -> None:
    token = jail["token"]
    r = raw(
        jail,
        f"GET http://allowed.test:{jail['port']}/ HTTP/1.1\r\nHost: allowed.test\r\nX-Sandgate-Token: {token}\r\n\r\n",
    )
    assert (r["status"], r["reason"]) == (407, "token-invalid")


def test_26_no_token(jail: dict[str, object]) -> None:
    r = raw(jail, f"GET http://allowed.test:{jail['port']}/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    assert (r["status"], r["reason"]) == (407, "token-invalid")


def test_27_http2_preface_and_garbage(jail: dict[str, object]) -> None:
    for payload in ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "\x05\x01\x00", "NOT-HTTP\r\n\r\n"):
        r = raw(jail, payload)
        assert r["status"] in (400, None) and not r["reached_upstream"], (payload, r)


def test_28_websocket_upgrade_to_other_host(jail: dict[str, object]) -> None:
    r = raw(jail, "GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  "Proxy-Authorization: Basic TOKEN\r\n\r\n")  # fmt: skip
    assert r["status"] in (403, 400) and not r["reached_upstream"]


def test_29_proxy_credentials_never_reach_upstream(jail: dict[str, object]) -> None:
    port = jail["port"]
    r = raw(jail, get(f"http://allowed.test:{port}/", f"allowed.test:{port}"))
    assert r["status"] == 200 and r["reached_upstream"]
    echoed = str(r["body"])
    assert "proxy-authorization" not in echoed and "x-sandgate-token" not in echoed and str(jail["token"]) not in echoed
