"""Session tokens: ES256 JWTs whose audience is the session id. Pure: keys come in, strings go out."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "sandgate"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    created_at: float

    def public_jwk(self) -> dict[str, str]:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        numbers = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "alg": ALGORITHM,
            "use": "sig",
            "kid": self.kid,
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_key(now: float) -> SigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return SigningKey(kid="k-" + secrets.token_hex(6), private_pem=pem, created_at=now)


def new_token_id() -> str:
    return secrets.token_hex(12)


def mint(key: SigningKey, session_id: str, token_id: str, issued_at: float, expires_at: float) -> str:
    """A token valid for exactly one session until `expires_at`."""
    claims = {
        "iss": ISSUER,
        "aud": session_id,
        "sub": session_id,
        "sid": session_id,
        "jti": token_id,
        "iat": int(issued_at),
        "exp": int(expires_at),
    }
    return jwt.encode(claims, key.private_pem, algorithm=ALGORITHM, headers={"kid": key.kid})


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}
