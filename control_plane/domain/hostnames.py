"""Rule host names: their one spelling, and the names no rule may use. Pure: no I/O beyond reading the
Public Suffix List that the `publicsuffixlist` package ships (once, on first use).

Refused, whatever the settings: a name that resolvers and clients read as a numeric IPv4 address
(`127.1`, `0x7f.1`, `2130706433`: inet_aton's shorthand; WHATWG URL's "ends in a number"), since the
route would then allow an address by a name no IP rule check sees. Refused unless
`allow_broad_wildcards`: a public suffix (`co.uk`, `github.io`: a registry under which anyone can
register names), and a wildcard over one (`*.co.uk`, `*.github.io`, `*.com`).
"""

from __future__ import annotations

import functools
import ipaddress
import re

from publicsuffixlist import PublicSuffixList

from control_plane.errors import InvalidArgument

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A last label that URL parsers and inet_aton take as a number: decimal (octal with a leading 0) or 0x hex.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_PART = re.compile(r"^(?:0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")


def canonical_host(raw: str, field: str = "host") -> str:
    """Lower case, no trailing dot, punycode; an IP in its one spelling, a CIDR as its network. Checks the
    spelling only (see `normalize_host` for what a new rule may name); raises InvalidArgument naming `field`."""
    host = raw.strip().rstrip(".").lower()
    if not host:
        raise InvalidArgument("must not be empty", field=field)
    if host == "*":
        raise InvalidArgument("'*' is too broad: it would allow every destination; list the hosts", field=field)
    if "/" in host:
        return _network(host, raw, field)
    if is_ip(host):
        return str(ipaddress.ip_address(host.strip("[]")))
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if "*" in name:
        raise InvalidArgument(
            f"{raw!r}: '*' is allowed only as the whole first label, as in '*.example.com'", field=field
        )
    name = _to_ascii(name, raw, field)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidArgument(f"{raw!r} is not a valid host name", field=field)
    return f"*.{name}" if wildcard else name


def is_numeric_name(host: str) -> bool:
    """Whether clients read the name `host` (canonical) as an IPv4 address: its last label is a number."""
    return bool(_NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]))


def refuse_numeric(host: str, field: str = "host") -> None:
    """InvalidArgument naming `field` if clients would read the name `host` (canonical) as an IPv4 address."""
    if not is_numeric_name(host):
        return
    address = inet_aton(host.removeprefix("*."))
    read_as = f"the address {address}" if address else "an IPv4 address"
    raise InvalidArgument(
        f"{host!r} ends in a number, so resolvers and clients read it as {read_as}, not as a name; "
        "write an IP rule in dotted-quad form (e.g. '192.0.2.1' or '192.0.2.0/28') to allow an address",
        field=field,
    )


def refuse_broad(host: str, field: str = "host") -> None:
    """InvalidArgument if `host` (canonical name) is a public suffix or a wildcard over one."""
    wildcard = host.startswith("*.")
    name = host.removeprefix("*.")
    if "." not in name and not (name == "localhost" and not wildcard):
        what = "a wildcard needs at least two labels after '*.'" if wildcard else "it is not a fully qualified name"
        raise InvalidArgument(f"{host!r} is too broad: {what}", field=field)
    if name != "localhost" and _suffixes().is_public(name):
        target = f"a wildcard over the public suffix {name!r}" if wildcard else "a public suffix"
        raise InvalidArgument(
            f"{host!r} is too broad: it is {target}, under which anyone can register names "
            "(Public Suffix List); list the hosts of the service you mean",
            field=field,
        )


def inet_aton(name: str) -> str:
    """What inet_aton makes of `name` (1 to 4 parts, each decimal, 0-octal or 0x-hex), or "" if nothing."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return ""
    *head, last = [_part_value(p) for p in parts]
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return ""
    return str(ipaddress.IPv4Address(sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last))


def _part_value(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _network(host: str, raw: str, field: str) -> str:
    try:
        return str(ipaddress.ip_network(host, strict=False))
    except ValueError as exc:
        raise InvalidArgument(f"{raw!r} is not a valid CIDR range", field=field) from exc


def _to_ascii(name: str, raw: str, field: str) -> str:
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidArgument(f"{raw!r} is not a valid internationalized host name", field=field) from exc


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The list bundled with the package: no network at run time. Unknown TLDs count as public suffixes."""
    return PublicSuffixList(accept_unknown=True)
