"""ListSessions pages: at most `MAX_PAGE` sessions, and never more bytes than a gRPC client accepts.

A page is cut early once its sessions fill `PAGE_BYTES`; its `next_page_token` then starts at the
first session left out. With the per-session limits (labels, rules) one session is far smaller than a
page, so a large session only makes pages shorter: it can never make ListSessions fail for anyone.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message

from control_plane.errors import InvalidArgument

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_RESPONSE_BYTES = 4 << 20  # what gRPC clients accept by default: the sessions API sends nothing larger
PAGE_BYTES = 3 << 20  # below it, with room for the envelope
_ENTRY_OVERHEAD = 6  # a repeated message field's tag and length prefix, at most
M = TypeVar("M", bound=Message)


def page_size(requested: int) -> int:
    """The number of sessions a page may hold: the request's, within 1..MAX_PAGE (0 means DEFAULT_PAGE)."""
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def fill(messages: Iterable[M], budget: int = PAGE_BYTES) -> list[M]:
    """The leading messages whose encoded size fits `budget` (always at least one, if there is one)."""
    page: list[M] = []
    used = 0
    for message in messages:
        cost = message.ByteSize() + _ENTRY_OVERHEAD
        if page and used + cost > budget:
            break
        page.append(message)
        used += cost
    return page


def offset(token: str) -> int:
    """Where a page starts, from a token this server issued ("" is the start)."""
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
    except ValueError as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()
