"""A stored secret's metadata and the validation of a new one. Pure: no I/O. The value is never in `Secret`."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from control_plane.domain.rules import SECRET_NAME
from control_plane.errors import InvalidArgument

MAX_VALUE_CHARS = 4096  # a header value Envoy sets: at most 16 KiB of UTF-8
PLACEHOLDER_PREFIX = "sandgate-placeholder-"
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")  # an RFC 9110 token
# Headers a credential may not set: the request's routing and framing are not a credential's to change.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
                       "proxy-authorization", "keep-alive", "x-sandgate-token"})  # fmt: skip


@dataclass(frozen=True)
class Secret:
    """What may be shown of a secret: everything but its value."""

    name: str
    header: str
    format: str
    created_at: float
    placeholder: str

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "header": self.header,
            "format": self.format,
            "created_at": datetime.datetime.fromtimestamp(self.created_at, datetime.UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "placeholder": self.placeholder,
        }


@dataclass(frozen=True)
class Injection:
    """What Envoy needs for one secret: the header it sets, that header's value, and the placeholder to refuse
    on any other host. Only the xDS renderer holds these."""

    header: str
    value: str
    placeholder: str


def check_name(name: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise InvalidArgument("a secret name is 1-64 letters, digits, '_', '.' or '-'", field="name")
    return name


def check_new(value: object, header: object, template: object) -> tuple[str, str, str]:
    """A new secret's value, header and format (`{value}` where the value goes); InvalidArgument naming the
    field otherwise. Error messages never quote the value."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument("must be a non-empty string", field="value")
    if len(value) > MAX_VALUE_CHARS or any(c in value for c in "\r\n\0"):
        raise InvalidArgument(f"at most {MAX_VALUE_CHARS} characters, on one line", field="value")
    if not isinstance(header, str) or not HEADER_NAME.fullmatch(header) or header.lower() in RESERVED_HEADERS:
        raise InvalidArgument("must be an HTTP header name that carries a credential", field="header")
    if not isinstance(template, str) or "{value}" not in template or any(c in template for c in "\r\n\0"):
        raise InvalidArgument("must hold '{value}', e.g. 'Bearer {value}'", field="format")
    return value, header, template


def header_value(template: str, value: str) -> str:
    return template.replace("{value}", value)
