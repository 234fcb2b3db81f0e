"""Admission: a session that does not fit beside the live ones is refused, naming what is exhausted."""

from __future__ import annotations

import pytest

from control_plane import config
from control_plane.domain.capacity import Capacity, Usage, admit, usage_of
from control_plane.domain.session import Limits
from control_plane.errors import CapacityExhausted

CAP = Capacity(max_sessions=3, total_memory_mb=2048, total_cpus=2.0)


@pytest.mark.parametrize(
    ("held", "asked", "field", "reason"),
    [
        ([Limits(64, 0.1, 512)] * 3, Limits(64, 0.1, 512), None, "runs at most 3 sessions"),
        ([Limits(1024, 0.5, 512)], Limits(1536, 0.5, 512), "limits.memory_mb", "memory is exhausted"),
        ([Limits(1024, 0.5, 512)], Limits(1536, 0.5, 512), "limits.memory_mb", "hold 1024 MiB of the 2048"),
        ([Limits(64, 1.5, 512)], Limits(64, 0.75, 512), "limits.cpus", "CPU is exhausted"),
        ([Limits(64, 1.5, 512)], Limits(64, 0.75, 512), "limits.cpus", "hold 1.5 of the 2 CPUs all"),
    ],
)
def test_what_does_not_fit_is_refused_naming_what(
    held: list[Limits], asked: Limits, field: str | None, reason: str
) -> None:
    with pytest.raises(CapacityExhausted) as err:
        admit(usage_of(held), asked, CAP)
    assert err.value.field == field
    assert reason in err.value.message


def test_what_fits_exactly_is_admitted_and_tenths_add_up() -> None:
    admit(usage_of([Limits(1024, 1.0, 512)]), Limits(1024, 1.0, 512), CAP)
    tenths = usage_of([Limits(64, 0.1, 512)] * 19)  # 1.9 CPUs, with no rounding left behind
    admit(tenths, Limits(64, 0.1, 512), Capacity(100, 10_000, 2.0))
    assert tenths.plus(Limits(64, 0.1, 512)).minus(Limits(64, 0.1, 512)) == tenths
    assert usage_of([]) + tenths == tenths


def test_defaults_refuse_500_sessions_of_8_gib() -> None:
    """The reported attack, against the defaults on the CI machine's size (24 GiB, 2 CPUs)."""
    settings = config.load(None, environ={})
    capacity = config.capacity(settings, config.HostSize(memory_mb=24105, cpus=2))
    assert capacity == Capacity(500, 96420, 64.0)
    held, admitted = Usage(), 0
    big = Limits(8192, 1.0, 512)
    with pytest.raises(CapacityExhausted, match="memory is exhausted"):
        for _ in range(500):
            admit(held, big, capacity)
            held, admitted = held.plus(big), admitted + 1
    assert admitted == 11


def test_totals_set_in_the_config_win_and_never_fall_below_one_default_session() -> None:
    settings = config.Settings(total_memory_mb=4096, total_cpus=3.0)
    assert config.capacity(settings, config.HostSize(1, 1)) == Capacity(500, 4096, 3.0)
    tiny = config.capacity(config.Settings(), config.HostSize(memory_mb=100, cpus=1))
    assert (tiny.total_memory_mb, tiny.total_cpus) == (512, 32.0)
