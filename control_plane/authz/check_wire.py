"""CheckRequest bytes to a CheckInput, reading only what the decision needs.

The bytes are parsed as `protos/sandgate/wire/authz.proto`, a subset of Envoy's CheckRequest with the
same field numbers; the protobuf runtime (upb, in C) skips everything else.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from control_plane.api.gen.sandgate.wire import authz_pb2 as pb
from control_plane.authz.decide import CheckInput
from control_plane.envoy_contract import JWT_FILTER, JWT_PAYLOAD_KEY, SESSION_ID_EXTENSION, UNLISTED, UNLISTED_EXTENSION


def check_input(request: bytes) -> CheckInput:
    """Raises ValueError if the bytes are not a CheckRequest."""
    try:
        attributes = pb.CheckRequest.FromString(request).attributes
    except DecodeError as e:
        raise ValueError(f"not a CheckRequest: {e}") from e
    http = attributes.request.http
    return CheckInput(
        session_id=attributes.context_extensions.get(SESSION_ID_EXTENSION, ""),
        method=http.method.decode("utf-8", "replace"),
        authority=http.host.decode("utf-8", "replace"),
        claims=_jwt_claims(attributes.metadata_context),
        unlisted=attributes.context_extensions.get(UNLISTED_EXTENSION, "") == UNLISTED,
    )


def _jwt_claims(metadata: pb.Metadata) -> dict[str, object]:
    """The verified token's string claims, as jwt_authn put them in the request's metadata."""
    if JWT_FILTER not in metadata.filter_metadata:
        return {}
    payload = metadata.filter_metadata[JWT_FILTER].fields.get(JWT_PAYLOAD_KEY)
    if payload is None or payload.WhichOneof("kind") != "struct_value":
        return {}
    return {k: v.string_value for k, v in payload.struct_value.fields.items() if v.WhichOneof("kind") == "string_value"}
