"""The listener refuses any request without this session's live token, with 407."""

from __future__ import annotations

import time

import pytest

from control_plane.domain import tokens
from control_plane.store import Store
from tests.e2e.conftest import SandgateClient
from tests.support.upstream import Upstream


def proxied(token: str | None, url: str) -> str:
    creds = f"sandgate:{token}@" if token is not None else ""
    return f"curl -sS -o /dev/null -w '%{{http_code}}' -x http://{creds}127.0.0.1:3128 {url}"


def connect(token: str | None, url: str) -> str:
    creds = f"sandgate:{token}@" if token is not None else ""
    return f"curl -sS -k -o /dev/null -w '%{{http_connect}}' -x http://{creds}127.0.0.1:3128 {url}"


@pytest.fixture()
def url(http_upstream: Upstream) -> str:
    return f"http://allowed.test:{http_upstream.port}/"


def test_own_token_passes(client: SandgateClient, url: str, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    assert client.sh(s.id, proxied(s.token, url))[1] == "200"
    _, token_file, _ = client.sh(s.id, "cat /run/sandgate/token")
    assert token_file == s.token
    _, env, _ = client.sh(s.id, "env | sort")
    assert f"HTTP_PROXY=http://sandgate:{s.token}@127.0.0.1:3128" in env
    assert "NO_PROXY=localhost,127.0.0.1" in env


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b.c"])
def test_missing_or_garbage_token_gets_407(
    client: SandgateClient, url: str, http_upstream: Upstream, token: str | None
) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    _, out, _ = client.sh(
        s.id, proxied(token, url) + "; echo; " + connect(token, f"https://allowed.test:{http_upstream.port}/")
    )
    assert out.split() == ["407", "407"]


def test_other_sessions_token_gets_407(client: SandgateClient, url: str, http_upstream: Upstream) -> None:
    rules = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    a, b = client.create(egress=rules), client.create(egress=rules)
    _, out, _ = client.sh(
        a.id, proxied(b.token, url) + "; echo; " + connect(b.token, f"https://allowed.test:{http_upstream.port}/")
    )
    assert out.split() == ["407", "407"]


def test_expired_token_gets_407(client: SandgateClient, url: str, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    store = Store(client.proc.state_dir / "sandgate.db")
    key = store.keys()[0]
    store.close()
    claims = _claims_of(s.token)
    expired = tokens.mint(key, s.id, str(claims["jti"]), time.time() - 600, time.time() - 300)
    assert client.sh(s.id, proxied(expired, url))[1] == "407"


def test_token_signed_by_unknown_key_gets_407(client: SandgateClient, url: str, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    forged = tokens.mint(
        tokens.generate_key(time.time()), s.id, _claims_of(s.token)["jti"], time.time(), time.time() + 600
    )
    assert client.sh(s.id, proxied(forged, url))[1] == "407"


def _claims_of(token: str) -> dict[str, str]:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]
