"""The spellings a rule or deny host may take on the admin API, as JSON Schema (ECMA) patterns. Pure.

The same pattern is enforced by the request models and published in /openapi.json, so they cannot disagree.
A pattern checks spelling only: a public suffix (Public Suffix List) or a wildcard over one is still refused
by the domain's check unless `allow_broad_wildcards` (a list of thousands of names is no JSON Schema).
"""

from __future__ import annotations

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# A last label that starts with a letter is never read as a number (`127.1`, `0x7f.1`; see hostnames.py).
_TOP = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9a-f]{1,4}"
_IPV6 = "|".join(
    (
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{1,7}}:",
        rf"(?:{_H}:){{1,6}}:{_H}",
        *(rf"(?:{_H}:){{1,{n}}}(?::{_H}){{1,{7 - n}}}" for n in range(5, 0, -1)),
        rf":(?:(?::{_H}){{1,7}}|:)",
    )
)
MAX_HOST_LENGTH = 253


def _prefixes(bits: int, max_addresses: int) -> str:
    """The CIDR prefix lengths whose ranges hold at most `max_addresses` addresses, as an alternation."""
    shortest = bits - max(max_addresses, 1).bit_length() + 1
    return "|".join(str(p) for p in range(bits, max(shortest, 0) - 1, -1))


def rule_host_pattern(max_cidr_addresses: int) -> str:
    """An exact name, `*.` and a name of two labels or more, an IP, or a CIDR of at most `max_cidr_addresses`."""
    name = rf"(?:\*\.)?(?:{_LABEL}\.)+{_TOP}|localhost"
    v4 = rf"{_IPV4}(?:/(?:{_prefixes(32, max_cidr_addresses)}))?"
    v6 = rf"(?:{_IPV6})(?:/(?:{_prefixes(128, max_cidr_addresses)}))?"
    return rf"^(?:{name}|{v4}|{v6})$"


DENY_HOST_PATTERN = rf"^(?:\*\.)?(?:{_LABEL}\.)*{_TOP}$"
"""A deny entry is a name or a `*.` wildcard, never an address (forbidden_cidrs holds those)."""

INSPECT_HOST_PATTERN = rf"^(?:(?:{_LABEL}\.)+{_TOP}|localhost)$"
"""An inspected rule's host: an exact name (a certificate is issued for it), never a wildcard or an address."""
