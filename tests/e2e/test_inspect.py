"""HTTPS inspection from inside a real sandbox: an inspected host's requests are decrypted and decided one by one,
with the session's own CA; every other tunnel stays the client's own TLS, end to end."""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import ssl
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.e2e.test_audit import wait_for
from tests.e2e.test_clients import CLIENTS_IMAGE
from tests.support import git_http, pypi_index
from tests.support.dns import DnsServer
from tests.support.file_host import FileHost
from tests.support.git_http import GitHost
from tests.support.upstream import Upstream, make_test_ca

API, OTHER_API, OPAQUE = "api.example.test", "other-api.example.test", "opaque.example.test"
GIT, PYPI, WRONG = "git.example.test", "pypi.example.test", "wrong-name.example.test"
NAMES = [API, OTHER_API, OPAQUE, GIT, PYPI, WRONG]  # the test CA's certificate names all but WRONG
# What a client inside sees of a TLS server through the proxy: the certificate's hash and issuer.
PEER = """
import hashlib, json, os, socket, ssl, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ['HTTPS_PROXY'])
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(('127.0.0.1', proxy.port))
import base64
auth = base64.b64encode(f'{proxy.username}:{proxy.password}'.encode()).decode()
s.sendall(f'CONNECT {host}:{port} HTTP/1.1\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
head = b''
while not head.endswith(b'\\r\\n\\r\\n'):
    head += s.recv(1)
ctx = ssl.create_default_context(cafile=os.environ.get('SSL_CERT_FILE'))
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
tls = ctx.wrap_socket(s, server_hostname=host)
der = tls.getpeercert(binary_form=True)
print(json.dumps({'sha256': hashlib.sha256(der).hexdigest(), 'der': der.hex()}))
"""


@dataclass(frozen=True)
class Hosts:
    ca_path: Path
    context: ssl.SSLContext
    api: Upstream
    opaque: Upstream


@pytest.fixture(scope="module")
def names(dns: DnsServer) -> Iterator[None]:
    for name in NAMES:
        dns.records[name] = "127.0.0.1"
    yield
    for name in NAMES:
        del dns.records[name]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, names: None) -> Iterator[Hosts]:
    ca_path, context = make_test_ca(tmp_path_factory.mktemp("inspect-ca"), [API, OTHER_API, OPAQUE, GIT, PYPI])
    with Upstream(tls=context) as api, Upstream(tls=context) as opaque:
        yield Hosts(ca_path, context, api, opaque)


@pytest.fixture()
def inspecting(own_sandgate_with: OwnSandgate, hosts: Hosts) -> Iterator[SandgateClient]:
    """A control plane whose upstream trust includes the tests' CA (as an operator's extra CA)."""
    proc = own_sandgate_with(upstream_ca_files=[str(hosts.ca_path)])
    client = SandgateClient(proc)
    yield client
    client.cleanup()


def curl(client: SandgateClient, sid: str, url: str, flags: str = "") -> tuple[int, str, str]:
    """Status, the deny reason (if any) and the body of an HTTPS request made with the session's own trust."""
    script = f"curl -sS {flags} -D /tmp/h -o /tmp/b --max-time 20 '{url}'; cat /tmp/h /tmp/b"
    code, out, err = client.sh(sid, script)
    assert code == 0, err
    # The last status line: the first is the proxy's answer to the CONNECT.
    status_line = [line for line in out.splitlines() if line.startswith("HTTP/")][-1]
    reason = next((line.split(": ", 1)[1].strip() for line in out.splitlines()
                   if line.lower().startswith("x-sandgate-deny-reason")), "")  # fmt: skip
    return int(status_line.split()[1]), reason, out


def echoed(out: str) -> dict[str, object]:
    return json.loads(out[out.index("{") :])  # type: ignore[no-any-return]


def peer_certificate(client: SandgateClient, sid: str, host: str, port: int) -> dict[str, str]:
    code, out, err = client.sh(sid, f'python3 -c "$(cat)" {host} {port}', stdin=PEER.encode())
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_inspected_requests_are_decided_inside_the_tunnel(inspecting: SandgateClient, hosts: Hosts) -> None:
    port = hosts.api.port
    rule = {"host": API, "ports": [port], "inspect": True, "methods": ["GET"], "paths": ["/v1/**"]}
    s = inspecting.create(egress=[rule])
    status, reason, out = curl(inspecting, s.id, f"https://{API}:{port}/v1/models?x=1")
    assert (status, reason) == (200, ""), out
    assert echoed(out)["path"] == "/v1/models?x=1"
    assert curl(inspecting, s.id, f"https://{API}:{port}/v1/models", "-X POST")[:2] == (403, "method-not-allowed")
    assert curl(inspecting, s.id, f"https://{API}:{port}/admin")[:2] == (403, "path-not-allowed")
    # Each tunnel is a decision, and so is every request inside it.
    found = wait_for(inspecting, s.id, 6)
    assert [(d["verdict"], d["reason"]) for d in found if d["method"] == "CONNECT"] == [("allow", "allowed")] * 3
    assert [(d["method"], d["host"], d["path"], d["verdict"], d["reason"], d["response_code"]) for d in found
            if d["method"] != "CONNECT"] == [
        ("GET", API, "/v1/models", "allow", "allowed", 200),
        ("POST", API, "/v1/models", "deny", "method-not-allowed", 403),
        ("GET", API, "/admin", "deny", "path-not-allowed", 403),
    ]  # fmt: skip


def test_an_inspected_host_shows_the_sessions_ca_and_others_their_own(inspecting: SandgateClient, hosts: Hosts) -> None:
    rules = [{"host": API, "ports": [hosts.api.port], "inspect": True}, {"host": OPAQUE, "ports": [hosts.opaque.port]}]
    s = inspecting.create(egress=rules)
    own = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", hosts.opaque.port)))
    seen = peer_certificate(inspecting, s.id, OPAQUE, hosts.opaque.port)
    assert seen["sha256"] == hashlib.sha256(own).hexdigest()  # byte for byte the upstream's own certificate
    inspected = peer_certificate(inspecting, s.id, API, hosts.api.port)
    assert inspected["sha256"] != hashlib.sha256(own).hexdigest()
    assert b"Sandgate inspection CA" in bytes.fromhex(inspected["der"])


@pytest.fixture()
def keyed_api(hosts: Hosts) -> Iterator[Upstream]:
    """An API host that records what it received and echoes none of it back."""
    with Upstream(tls=hosts.context, echo=False) as up:
        yield up


def test_a_credential_is_injected_and_nowhere_in_the_sandbox(inspecting: SandgateClient, keyed_api: Upstream) -> None:
    proc, port, key = inspecting.proc, keyed_api.port, "sk-test-" + secrets.token_hex(16)
    status, meta = proc.admin("PUT", "/v1/secrets/api-key", {"value": key, "header": "Authorization",
                                                             "format": "Bearer {value}"})  # fmt: skip
    assert status == 200 and key not in json.dumps(meta), meta
    placeholder = meta["placeholder"]
    rules = [{"host": API, "ports": [port], "inspect": True, "credential": "api-key"},
             {"host": OTHER_API, "ports": [port], "inspect": True}]  # fmt: skip
    s = inspecting.create(egress=rules, env={"API_KEY": placeholder})
    assert curl(inspecting, s.id, f"https://{API}:{port}/v1/chat")[0] == 200
    assert curl(inspecting, s.id, f"https://{API}:{port}/v1/chat", "-H 'Authorization: Bearer mine'")[0] == 200
    assert curl(inspecting, s.id, f"https://{API}:{port}/", '-H "Authorization: Bearer $API_KEY"')[0] == 200
    assert [r["headers"]["authorization"] for r in keyed_api.requests] == [f"Bearer {key}"] * 3  # type: ignore[index]
    # The placeholder anywhere else is refused, and logged.
    sent = len(keyed_api.requests)
    refused = curl(inspecting, s.id, f"https://{OTHER_API}:{port}/", '-H "Authorization: Bearer $API_KEY"')
    assert refused[:2] == (403, "credential-host-mismatch")
    assert len(keyed_api.requests) == sent
    # Nowhere a sandbox can look: its environment, its files, any process's memory map or environment.
    look = 'env; cat /proc/*/environ; grep -rsl -- "$K" /tmp /run /etc /home /root /var; cat /tmp/h /tmp/b'
    _, out, err = inspecting.sh(s.id, look.replace("$K", key[:12]))
    assert key[:12] not in out + err
    found = wait_for(inspecting, s.id, 8)
    assert [(d["host"], d["path"], d["reason"], d["credential"]) for d in found if d["method"] == "GET"] == [
        (API, "/v1/chat", "allowed", "api-key"), (API, "/v1/chat", "allowed", "api-key"),
        (API, "/", "allowed", "api-key"), (OTHER_API, "/", "credential-host-mismatch", ""),
    ]  # fmt: skip
    for path in ("/v1/decisions?limit=1000", f"/v1/sessions/{s.id}", "/v1/secrets", "/v1/secrets/api-key"):
        assert key not in json.dumps(proc.admin("GET", path)[1]), path
    assert key not in urllib.request.urlopen(f"http://127.0.0.1:{proc.admin_port}/metrics").read().decode()


def test_removing_a_credential_stops_injection_on_the_next_request(
    inspecting: SandgateClient, keyed_api: Upstream
) -> None:
    proc, port = inspecting.proc, keyed_api.port
    assert proc.admin("PUT", "/v1/secrets/live-key", {"value": "live-secret-value"})[0] == 200
    rule = {"host": API, "ports": [port], "inspect": True, "credential": "live-key"}
    s = inspecting.create(egress=[rule])
    # One keep-alive connection inside one tunnel: a request, then (once the edit is applied) the next.
    running = threading.Thread(target=inspecting.sh, args=(s.id, f"python3 -c \"$(cat)\" {API} {port}"),
                               kwargs={"stdin": KEEP_ALIVE.encode()})  # fmt: skip
    running.start()
    _wait_until(lambda: len(keyed_api.requests) == 1)
    assert keyed_api.requests[0]["headers"]["authorization"] == "live-secret-value"  # type: ignore[index]
    assert proc.admin("DELETE", "/v1/secrets/live-key")[0] == 409  # a rule still names it
    status, _ = proc.admin("PUT", f"/v1/sessions/{s.id}/egress?wait=applied",
                           {"egress": [{**rule, "credential": ""}]})  # fmt: skip
    assert status == 200
    assert inspecting.sh(s.id, "touch /tmp/go")[0] == 0
    running.join()
    assert len(keyed_api.requests) == 2
    assert "authorization" not in keyed_api.requests[1]["headers"]  # type: ignore[operator]
    assert proc.admin("DELETE", "/v1/secrets/live-key")[0] == 204
    # An unknown secret cannot be named, nor can a rule that is not inspected carry one.
    status, body = proc.admin("POST", f"/v1/sessions/{s.id}/egress", rule)
    assert (status, body["error"]["field"]) == (409, "credential") and "live-key" in body["error"]["message"]
    status, body = proc.admin("POST", f"/v1/sessions/{s.id}/egress", {"host": API, "credential": "x"})
    assert (status, body["error"]["field"]) == (400, "credential")


KEEP_ALIVE = """
import http.client, os, ssl, sys, time, urllib.parse
proxy = urllib.parse.urlsplit(os.environ['HTTPS_PROXY'])
host, port = sys.argv[1], int(sys.argv[2])
import base64
auth = base64.b64encode(f'{proxy.username}:{proxy.password}'.encode()).decode()
conn = http.client.HTTPSConnection('127.0.0.1', proxy.port, context=ssl.create_default_context())
conn.set_tunnel(host, port, headers={'Proxy-Authorization': 'Basic ' + auth})
conn.request('GET', '/first'); conn.getresponse().read()
while not os.path.exists('/tmp/go'):
    time.sleep(0.05)
conn.request('GET', '/second'); print(conn.getresponse().status)
"""


def _wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_name_the_sessions_ca_may_not_sign_cannot_be_intercepted(inspecting: SandgateClient, hosts: Hosts) -> None:
    """Even with the session's CA key in hand (read here from the control plane's state), a certificate it signs
    for another name is refused by a client that trusts the session's bundle."""
    rules = [{"host": API, "ports": [hosts.api.port], "inspect": True}, {"host": OPAQUE, "ports": [hosts.opaque.port]}]
    s = inspecting.create(egress=rules)
    (ca,) = json.loads((inspecting.proc.state_dir / "inspect" / f"{s.id}.json").read_text())
    forged = _forge(ca["cert"].encode(), ca["key"].encode(), OPAQUE)
    with Upstream(tls=forged) as impostor:
        inspecting.proc.admin("POST", f"/v1/sessions/{s.id}/egress?wait=applied",
                              {"host": OPAQUE, "ports": [impostor.port]})  # fmt: skip
        code, _, err = inspecting.sh(s.id, f"curl -sS -o /dev/null https://{OPAQUE}:{impostor.port}/")
    assert code != 0 and ("certificate" in err.lower() or "constraint" in err.lower()), err
    assert curl(inspecting, s.id, f"https://{API}:{hosts.api.port}/")[0] == 200  # the same bundle, a permitted name


def _forge(ca_pem: bytes, key_pem: bytes, name: str) -> ssl.SSLContext:
    from control_plane.inspection.ca import Leaf, SessionCA, issue_leaf

    ca = SessionCA(ca_pem, key_pem, (name,))  # lie about the constraints: the certificate still carries them
    leaf: Leaf = issue_leaf(ca, name, time.time() + 600, time.time())
    directory = Path(tempfile.mkdtemp())
    (directory / "chain.pem").write_bytes(leaf.chain_pem)
    (directory / "key.pem").write_bytes(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "chain.pem", directory / "key.pem")
    return context


def test_upstream_tls_is_verified(inspecting: SandgateClient, hosts: Hosts, tmp_path: Path) -> None:
    """An inspected upstream must chain to the trust store and carry the requested name: else nothing is sent."""
    _, untrusted = make_test_ca(tmp_path, [API])
    with Upstream(tls=untrusted) as impostor:
        rules = [{"host": API, "ports": [impostor.port], "inspect": True},
                 {"host": WRONG, "ports": [hosts.api.port], "inspect": True}]  # fmt: skip
        s = inspecting.create(egress=rules)
        for url in (f"https://{API}:{impostor.port}/", f"https://{WRONG}:{hosts.api.port}/"):
            status, _, out = curl(inspecting, s.id, url)
            assert status == 503 and "upstream-unreachable" in out, out
        assert impostor.requests == []


def test_git_clone_with_an_injected_token(inspecting: SandgateClient, hosts: Hosts, tmp_path: Path) -> None:
    token = "ghp_" + secrets.token_hex(18)
    git_http.make_repository(tmp_path)
    (tmp_path / "private.git").symlink_to(tmp_path / git_http.REPO)
    assert inspecting.proc.admin("PUT", "/v1/secrets/git-token", {"value": token, "format": "Bearer {value}"})[0] == 200
    with GitHost(tmp_path, hosts.context, token=token) as git:
        rule = {"host": GIT, "ports": [git.port], "inspect": True, "credential": "git-token"}
        s = inspecting.create(image=CLIENTS_IMAGE, egress=[rule])
        script = f"git clone -q {git.url(GIT)}/private.git /tmp/private && cat /tmp/private/README"
        code, out, err = inspecting.sh(s.id, script)
        assert (code, out) == (0, git_http.README), err
        assert git.authorizations and set(git.authorizations) == {f"Bearer {token}"}
        look = 'env; cat /proc/*/environ; grep -rsl -- "$K" /tmp /run /etc /home /root /var'
        _, out, err = inspecting.sh(s.id, look.replace("$K", token[:14]))
        assert token[:14] not in out + err


def test_pip_installs_from_an_inspected_index(inspecting: SandgateClient, hosts: Hosts) -> None:
    with FileHost(hosts.context) as index:
        index.files.update(pypi_index.simple_index())
        rule = {"host": PYPI, "ports": [index.port], "inspect": True, "methods": ["GET"], "paths": ["/simple/**"]}
        s = inspecting.create(image=CLIENTS_IMAGE, egress=[rule])
        script = (
            f"python3 -m pip install -q --no-cache-dir --disable-pip-version-check --retries 0 --target /tmp/t "
            f"--index-url {index.url(PYPI)}/simple/ {pypi_index.PROJECT}"
            f" && PYTHONPATH=/tmp/t python3 -c 'import {pypi_index.MODULE} as m; print(m.GREETING)'"
        )
        code, out, err = inspecting.sh(s.id, script)
        assert code == 0 and out.rstrip().endswith(pypi_index.GREETING), out + err
        found = wait_for(inspecting, s.id, 3)
        assert f"/simple/{pypi_index.PROJECT}/" in {d["path"] for d in found if d["method"] == "GET"}


# Inside an inspected tunnel: send raw bytes over TLS (verified with the session's bundle), print the answer.
RAW_TLS = """
import base64, os, socket, ssl, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ['HTTPS_PROXY'])
host, port = sys.argv[1], int(sys.argv[2])
auth = base64.b64encode(f'{proxy.username}:{proxy.password}'.encode()).decode()
s = socket.create_connection(('127.0.0.1', proxy.port))
s.sendall(f'CONNECT {host}:{port} HTTP/1.1\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n'.encode())
head = b''
while not head.endswith(b'\\r\\n\\r\\n'):
    head += s.recv(1)
tls = ssl.create_default_context().wrap_socket(s, server_hostname=host)
tls.sendall(sys.stdin.buffer.read().replace(b'HOSTPORT', f'{host}:{port}'.encode()))
out = b''
try:
    while chunk := tls.recv(65536):
        out += chunk
except (ssl.SSLError, OSError):
    pass
sys.stdout.write(out.decode(errors='replace'))
"""
SHAPES = {
    "cl-and-te": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "oversized": "X-Big: " + "a" * 70000 + "\r\n",
    "bad-te": "Transfer-Encoding: gzip, chunked, identity\r\n",
}


def test_smuggling_shapes_are_refused_inside_inspected_tls(inspecting: SandgateClient, keyed_api: Upstream) -> None:
    port = keyed_api.port
    s = inspecting.create(egress=[{"host": API, "ports": [port], "inspect": True}])

    def send(raw: str) -> str:
        script = f'python3 -c "$(cat /tmp/raw.py)" {API} {port}'
        code, out, err = inspecting.sh(s.id, script, stdin=raw.encode())
        assert code == 0, err
        return out

    assert inspecting.sh(s.id, "cat > /tmp/raw.py", stdin=RAW_TLS.encode())[0] == 0
    for name, headers in SHAPES.items():
        out = send(f"POST /x HTTP/1.1\r\nHost: HOSTPORT\r\n{headers}\r\n0\r\n\r\n")
        assert out == "" or out.split()[1] in ("400", "413", "431", "501"), (name, out[:200])
    assert keyed_api.requests == []
    # A pipelined second request for a host this session does not inspect gets its own refusal.
    first = "GET /ok HTTP/1.1\r\nHost: HOSTPORT\r\n\r\n"
    out = send(first + f"GET / HTTP/1.1\r\nHost: {OTHER_API}:{port}\r\nConnection: close\r\n\r\n")
    assert out.count("HTTP/1.1 ") == 2 and "host-not-allowed" in out, out[:500]
    assert [r["path"] for r in keyed_api.requests] == ["/ok"]


def test_inspection_is_switched_on_and_off_live(inspecting: SandgateClient, hosts: Hosts) -> None:
    """A running session gains inspection (its first CA, its bundle) and loses it, each ACK-confirmed."""
    own = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", hosts.api.port)))
    rule = {"host": API, "ports": [hosts.api.port]}
    s = inspecting.create(egress=[rule])
    assert peer_certificate(inspecting, s.id, API, hosts.api.port)["sha256"] == hashlib.sha256(own).hexdigest()
    path = f"/v1/sessions/{s.id}/egress?wait=applied"
    assert inspecting.proc.admin("PUT", path, {"egress": [{**rule, "inspect": True, "methods": ["GET"]}]})[0] == 200
    assert curl(inspecting, s.id, f"https://{API}:{hosts.api.port}/")[0] == 200  # the new bundle, at once
    assert curl(inspecting, s.id, f"https://{API}:{hosts.api.port}/", "-X POST")[:2] == (403, "method-not-allowed")
    assert inspecting.proc.admin("PUT", path, {"egress": [rule]})[0] == 200
    assert peer_certificate(inspecting, s.id, API, hosts.api.port)["sha256"] == hashlib.sha256(own).hexdigest()


def test_one_sessions_inspection_leaves_anothers_tunnel_to_the_same_host_alone(
    inspecting: SandgateClient, hosts: Hosts
) -> None:
    own = hashlib.sha256(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", hosts.api.port))))
    rule = {"host": API, "ports": [hosts.api.port]}
    inspected = inspecting.create(egress=[{**rule, "inspect": True}])
    opaque = inspecting.create(egress=[rule])
    for _ in range(2):  # interleaved: neither's upstream connections serve the other
        assert curl(inspecting, inspected.id, f"https://{API}:{hosts.api.port}/")[0] == 200
        assert peer_certificate(inspecting, opaque.id, API, hosts.api.port)["sha256"] == own.hexdigest()
        assert peer_certificate(inspecting, inspected.id, API, hosts.api.port)["sha256"] != own.hexdigest()


def test_inspection_and_credentials_survive_kill_9(inspecting: SandgateClient, keyed_api: Upstream) -> None:
    """The session's CA (in its bundle) and the secrets' key are the control plane's state: after a crash and a
    restart the same bundle still verifies, and the credential is still injected."""
    proc, port = inspecting.proc, keyed_api.port
    assert proc.admin("PUT", "/v1/secrets/kept", {"value": "kept-secret-value"})[0] == 200
    s = inspecting.create(egress=[{"host": API, "ports": [port], "inspect": True, "credential": "kept"}])
    assert curl(inspecting, s.id, f"https://{API}:{port}/")[0] == 200
    bundle = (proc.state_dir / "sessions" / s.id / "ca-bundle.pem").read_bytes()
    proc.stop(signal.SIGKILL)
    proc.start()  # the client's channel reconnects to the same port
    assert curl(inspecting, s.id, f"https://{API}:{port}/")[0] == 200
    assert (proc.state_dir / "sessions" / s.id / "ca-bundle.pem").read_bytes() == bundle
    assert [r["headers"]["authorization"] for r in keyed_api.requests] == ["kept-secret-value"] * 2  # type: ignore[index]
