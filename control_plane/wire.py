"""A minimal protobuf wire reader for the two messages on the hot path: Envoy's access-log entries and
ext_authz CheckRequests. Generated message classes validate every field of every nested message and
cost about ten times more; these read only the fields Sandgate uses. Pure."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5

Field = tuple[int, int, int, int]  # (number, wire type, value or start, end)


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Each field of the message in buf[start:end]: varints and fixed values as ints, LEN as a slice."""
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        key, pos = varint(buf, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = varint(buf, pos)
            yield number, kind, value, 0
        elif kind == LEN:
            length, pos = varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, kind, pos, pos + length
            pos += length
        elif kind in (I64, I32):
            size = 8 if kind == I64 else 4
            yield number, kind, int.from_bytes(buf[pos : pos + size], "little"), 0
            pos += size
        else:
            raise ValueError(f"unsupported wire type {kind}")


def text(buf: bytes, f: Field) -> str:
    return buf[f[2] : f[3]].decode("utf-8", "replace")


def sub(buf: bytes, f: Field, number: int) -> Field | None:
    """The last field `number` inside the LEN field f (last one wins, as in protobuf)."""
    found = None
    for g in fields(buf, f[2], f[3]):
        if g[0] == number:
            found = g
    return found


def string_map(buf: bytes, f: Field) -> tuple[str, str]:
    """A map<string, string> entry."""
    key = value = ""
    for g in fields(buf, f[2], f[3]):
        if g[0] == 1:
            key = text(buf, g)
        elif g[0] == 2:
            value = text(buf, g)
    return key, value


def seconds(buf: bytes, f: Field) -> float:
    """A Timestamp or Duration."""
    secs = nanos = 0
    for g in fields(buf, f[2], f[3]):
        if g[0] == 1:
            secs = g[2]
        elif g[0] == 2:
            nanos = g[2]
    return secs + nanos / 1e9
