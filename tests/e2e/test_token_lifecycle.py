"""Token lifecycle: forgeries are refused, keys rotate without breaking sessions, ending revokes at once."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import time

import jwt
import pytest

from control_plane.domain import tokens
from control_plane.store import Store
from tests.e2e.conftest import SandgateClient
from tests.support.upstream import Upstream


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def craft(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def forgeries(token: str, key: tokens.SigningKey, other_session: str) -> dict[str, str]:
    good = claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    now = int(time.time())
    signing_input = token.rsplit(".", 1)[0]
    public_jwk = json.dumps(key.public_jwk()).encode()
    hs256_header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    hs256_body = signing_input.split(".")[1]
    hs256_sig = hmac.new(public_jwk, f"{hs256_header}.{hs256_body}".encode(), hashlib.sha256).digest()
    header, _, sig = token.split(".")

    def signed(**changes: object) -> str:
        claims = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return jwt.encode(claims, key.private_pem, algorithm="ES256", headers={"kid": kid})

    return {
        "alg-none": craft({"alg": "none", "typ": "JWT"}, good),
        "hs256-with-public-key": f"{hs256_header}.{hs256_body}.{b64(hs256_sig)}",
        "tampered-claims": f"{header}.{b64(json.dumps({**good, 'exp': now + 10**6}).encode())}.{sig}",
        "other-issuer": signed(iss="someone-else"),
        "other-audience": signed(aud=other_session, sid=other_session),
        "missing-exp": signed(exp=None),
        "expired": signed(exp=now - 120, iat=now - 600),
        "unknown-kid": jwt.encode(good, key.private_pem, algorithm="ES256", headers={"kid": "k-unknown"}),
        "truncated": token[:-10],
    }


def test_forged_tokens_are_refused(client: SandgateClient, http_upstream: Upstream) -> None:
    rules = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    s, other = client.create(egress=rules), client.create(egress=rules)
    store = Store(client.proc.state_dir / "sandgate.db")
    key = store.keys()[0]
    store.close()
    cases = forgeries(s.token, key, other.id)
    script = "; ".join(
        f"echo {name} $(curl -s -o /dev/null -w '%{{http_code}}' -x http://u:{tok}@127.0.0.1:3128 "
        f"http://allowed.test:{http_upstream.port}/)"
        for name, tok in cases.items()
    )
    _, out, _ = client.sh(s.id, script)
    results = dict(line.split() for line in out.splitlines())
    assert results == dict.fromkeys(cases, "407")
    assert (
        client.sh(s.id, f"curl -s -o /dev/null -w '%{{http_code}}' http://allowed.test:{http_upstream.port}/")[1]
        == "200"
    )


def test_key_rotation_keeps_live_sessions_working(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    rules = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    before = client.create(egress=rules)
    status, body = proc.admin("POST", "/v1/signing-keys/rotate?wait=applied")
    assert status == 200 and body["signing_key"] in body["verifying_keys"] and len(body["verifying_keys"]) >= 2
    after = client.create(egress=rules)
    assert jwt.get_unverified_header(after.token)["kid"] == body["signing_key"]
    assert jwt.get_unverified_header(before.token)["kid"] != body["signing_key"]
    url = f"http://allowed.test:{http_upstream.port}/"
    for s in (before, after):
        assert client.sh(s.id, f"curl -s -o /dev/null -w '%{{http_code}}' {url}")[1] == "200"


def _request(sock: socket.socket, token: str, port: int) -> bytes:
    auth = base64.b64encode(f"u:{token}".encode()).decode()
    target = f"allowed.test:{port}"
    req = f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
    try:
        sock.sendall(req.encode())
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.mark.parametrize("ending", ["delete", "expiry"])
def test_ending_revokes_on_open_connections(client: SandgateClient, http_upstream: Upstream, ending: str) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}], ttl_seconds=4)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(client.proc.state_dir / "sessions" / s.id / "proxy.sock"))
    sock.settimeout(10)
    assert _request(sock, s.token, http_upstream.port).startswith(b"HTTP/1.1 200")
    if ending == "delete":
        client.delete(s.id)
    else:
        deadline = time.monotonic() + 15
        while any(x.id == s.id for x in client.list().sessions):
            assert time.monotonic() < deadline, "session did not expire"
            time.sleep(0.2)
    answer = _request(sock, s.token, http_upstream.port)
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer == b"" or b"session-ended" in answer
    sock.close()


def test_ending_closes_open_tunnels(client: SandgateClient, tls_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "secure.test", "ports": [tls_upstream.port]}])
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(client.proc.state_dir / "sessions" / s.id / "proxy.sock"))
    auth = base64.b64encode(f"u:{s.token}".encode()).decode()
    target = f"secure.test:{tls_upstream.port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode())
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    client.delete(s.id)
    sock.settimeout(10)  # the listener drains for 2 s, then its connections are closed
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(4096) == b""
    sock.close()
