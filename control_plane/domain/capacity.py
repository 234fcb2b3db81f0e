"""Admission: what live sessions hold in all, and whether one more fits. Pure.

A session's memory and CPU limits are ceilings (cgroup limits), not reservations, so their sum may
exceed the host by an overcommit factor (settings `total_memory_mb`, `total_cpus`); it may not grow
without bound, or one caller's sessions at their ceilings would starve every other session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from control_plane.domain.session import Limits
from control_plane.errors import CapacityExhausted

MILLI = 1000  # CPUs are summed in thousandths, so that adding and removing sessions leaves no rounding behind


@dataclass(frozen=True)
class Capacity:
    """What all live sessions together may hold."""

    max_sessions: int
    total_memory_mb: int
    total_cpus: float


@dataclass(frozen=True)
class Usage:
    """What a number of sessions hold: their count, memory limits (MiB) and CPU limits (thousandths)."""

    sessions: int = 0
    memory_mb: int = 0
    millicpus: int = 0

    def plus(self, limits: Limits, sign: int = 1) -> Usage:
        return Usage(
            self.sessions + sign,
            self.memory_mb + sign * limits.memory_mb,
            self.millicpus + sign * round(limits.cpus * MILLI),
        )

    def minus(self, limits: Limits) -> Usage:
        return self.plus(limits, -1)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.sessions + other.sessions, self.memory_mb + other.memory_mb, self.millicpus + other.millicpus)


def usage_of(limits: Iterable[Limits]) -> Usage:
    total = Usage()
    for each in limits:
        total = total.plus(each)
    return total


def admit(held: Usage, asked: Limits, capacity: Capacity) -> None:
    """Raise CapacityExhausted, naming what is exhausted, if `asked` does not fit beside `held`."""
    if held.sessions + 1 > capacity.max_sessions:
        raise CapacityExhausted(f"this Sandgate runs at most {capacity.max_sessions} sessions; end one first")
    if held.memory_mb + asked.memory_mb > capacity.total_memory_mb:
        raise CapacityExhausted(
            f"memory is exhausted: live sessions hold {held.memory_mb} MiB of the {capacity.total_memory_mb} MiB "
            f"all sessions may hold (total_memory_mb), and this one asks for {asked.memory_mb}; "
            "ask for less or end a session",
            field="limits.memory_mb",
        )
    total_milli = round(capacity.total_cpus * MILLI)
    if held.millicpus + round(asked.cpus * MILLI) > total_milli:
        raise CapacityExhausted(
            f"CPU is exhausted: live sessions hold {held.millicpus / MILLI:g} of the {capacity.total_cpus:g} CPUs "
            f"all sessions may hold (total_cpus), and this one asks for {asked.cpus:g}; ask for less or end a session",
            field="limits.cpus",
        )
