"""CheckRequest bytes to a CheckInput, reading only what the decision needs (see control_plane.wire)."""

from __future__ import annotations

from control_plane.authz.decide import CheckInput
from control_plane.wire import Field, fields, string_map, sub, text

JWT_NAMESPACE = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "jwt_payload"


def check_input(request: bytes) -> CheckInput:
    session_id = method = authority = ""
    claims: dict[str, object] = {}
    attributes = next((f for f in fields(request) if f[0] == 1), None)
    if attributes is None:
        return CheckInput("", "", "", {})
    for f in fields(request, attributes[2], attributes[3]):
        if f[0] == 4 and (http := sub(request, f, 2)):
            for g in fields(request, http[2], http[3]):
                if g[0] == 2:
                    method = text(request, g)
                elif g[0] == 5:
                    authority = text(request, g)
        elif f[0] == 10:
            key, value = string_map(request, f)
            if key == "session_id":
                session_id = value
        elif f[0] == 11:
            claims.update(_jwt_claims(request, f))
    return CheckInput(session_id, method, authority, claims)


def _jwt_claims(buf: bytes, metadata: Field) -> dict[str, object]:
    for entry in fields(buf, metadata[2], metadata[3]):  # filter_metadata: map<string, Struct>
        name = sub(buf, entry, 1)
        struct = sub(buf, entry, 2)
        if name and struct and text(buf, name) == JWT_NAMESPACE:
            payload = _struct(buf, struct).get(PAYLOAD_KEY)
            return _struct(buf, payload) if isinstance(payload, tuple) else {}
    return {}


def _struct(buf: bytes, struct: Field) -> dict[str, object]:
    """A Struct's string members as str; nested structs as their Field for a further look."""
    out: dict[str, object] = {}
    for member in fields(buf, struct[2], struct[3]):
        key, value = sub(buf, member, 1), sub(buf, member, 2)
        if not key or not value:
            continue
        for kind in fields(buf, value[2], value[3]):
            if kind[0] == 3:
                out[text(buf, key)] = text(buf, kind)
            elif kind[0] == 5:
                out[text(buf, key)] = kind
    return out
