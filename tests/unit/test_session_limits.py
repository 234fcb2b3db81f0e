"""Labels, environment, image and resource limits of one session: each refusal names the field and why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from control_plane.domain import session as sess
from control_plane.domain.session import LimitBounds, Limits, MetadataLimits
from control_plane.errors import InvalidArgument

SMALL = MetadataLimits(max_labels=2, max_labels_bytes=20, max_env_vars=2, max_env_bytes=30)


def labels(n: int, value: str = "v") -> dict[str, str]:
    return {f"k{i}": value for i in range(n)}


LABEL_CASES: list[tuple[dict[str, str], MetadataLimits, str]] = [
    (labels(25_000), MetadataLimits(), "at most 64 labels (max_labels), got 25000"),
    (labels(65), MetadataLimits(), "at most 64 labels"),
    (labels(64, "x" * 256), MetadataLimits(), "(max_labels_bytes)"),
    ({"bad key!": "x"}, MetadataLimits(), "must be 1-63 characters"),
    ({"k" * 64: "x"}, MetadataLimits(), "must be 1-63 characters"),
    ({"": "x"}, MetadataLimits(), "must be 1-63 characters"),
    ({"key\n": "x"}, MetadataLimits(), "must be 1-63 characters"),
    ({"k": "x" * 257}, MetadataLimits(), "at most 256 bytes"),
    ({"k": "é" * 129}, MetadataLimits(), "at most 256 bytes"),  # 258 bytes in UTF-8
    ({"k": "line\nbreak"}, MetadataLimits(), "printable text"),
    ({"k": "nul\0"}, MetadataLimits(), "printable text"),
    (labels(3), SMALL, "at most 2 labels"),
    ({"key1": "v" * 10, "key2": "v" * 10}, SMALL, "labels hold 28 bytes; at most 20"),
]


@pytest.mark.parametrize(("given", "limits", "reason"), LABEL_CASES, ids=lambda v: str(v)[:40])
def test_bad_labels_name_the_field(given: dict[str, str], limits: MetadataLimits, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        sess.validate_labels(given, limits)
    assert err.value.field == "labels"
    assert reason in err.value.message
    assert len(err.value.message) < 300  # a refused key is not echoed back at any length


def test_labels_at_the_limits_are_accepted() -> None:
    at_limit = {f"key-{i:02}": "v" * 250 for i in range(64)}  # 64 x 256 = 16,384 bytes
    assert sess.validate_labels(at_limit) == at_limit
    assert sess.validate_labels({"team/owner": "ünïcode value with spaces"})


ENV_CASES: list[tuple[dict[str, str], MetadataLimits, str]] = [
    ({f"V{i}": "x" for i in range(129)}, MetadataLimits(), "at most 128 variables (max_env_vars), got 129"),
    ({f"V{i}": "x" * 1024 for i in range(64)}, MetadataLimits(), "(max_env_bytes)"),
    ({"BIG": "x" * (128 << 10)}, MetadataLimits(max_env_bytes=512 << 10), "the kernel takes at most 128 KiB"),
    ({"1BAD": "x"}, MetadataLimits(), "is not a valid environment variable name"),
    ({"A-B": "x"}, MetadataLimits(), "is not a valid environment variable name"),
    ({"A\n": "x"}, MetadataLimits(), "is not a valid environment variable name"),
    ({"X" * 129: "x"}, MetadataLimits(), "is not a valid environment variable name"),
    ({"HTTP_PROXY": "http://evil"}, MetadataLimits(), "set by Sandgate"),
    ({"SANDGATE_SESSION_ID": "s-1"}, MetadataLimits(), "set by Sandgate"),
    ({"A": "nul\0"}, MetadataLimits(), "NUL byte"),
    ({"A": "1", "B": "2", "C": "3"}, SMALL, "at most 2 variables"),
    ({"A": "x" * 20, "B": "y" * 20}, SMALL, "the environment holds 44 bytes; at most 30"),
]


@pytest.mark.parametrize(("given", "limits", "reason"), ENV_CASES, ids=lambda v: str(v)[:40])
def test_bad_env_names_the_field(given: dict[str, str], limits: MetadataLimits, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        sess.validate_env(given, "env", limits)
    assert err.value.field == "env"
    assert reason in err.value.message


def test_env_at_the_limits_is_accepted() -> None:
    at_limit = {f"V{i:03}": "x" * 507 for i in range(128)}  # 128 x (4 + 1 + 507) = 65,536 bytes
    assert sess.validate_env(at_limit) == at_limit


@pytest.mark.parametrize(
    ("image", "expected"),
    [("", "default:latest"), ("  ", "default:latest"), ("python:3.12-slim", "python:3.12-slim"),
     ("registry.example:5000/team/img@sha256:" + "a" * 64, "registry.example:5000/team/img@sha256:" + "a" * 64)],
)  # fmt: skip
def test_image_references(image: str, expected: str) -> None:
    assert sess.validate_image(image, "default:latest") == expected


@pytest.mark.parametrize("image", ["a" * 256, "bad image", "-leading", "img\nx", "../../x;rm"])
def test_bad_images_name_the_field(image: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        sess.validate_image(image, "default")
    assert err.value.field == "image"


DEFAULTS = Limits(512, 1.0, 512)
Call = Callable[[], Limits]


@pytest.mark.parametrize(
    ("memory_mb", "cpus", "pids", "bounds", "field"),
    [
        (8193, 0, 0, LimitBounds(), "limits.memory_mb"),
        (32, 0, 0, LimitBounds(), "limits.memory_mb"),
        (0, 2.5, 0, LimitBounds(), "limits.cpus"),
        (0, 0, 5000, LimitBounds(), "limits.pids"),
        (2048, 0, 0, LimitBounds(max_memory_mb=1024), "limits.memory_mb"),
        (0, 1.5, 0, LimitBounds(max_cpus=1.0), "limits.cpus"),
    ],
)
def test_limits_over_a_per_session_maximum_name_the_field(
    memory_mb: int, cpus: float, pids: int, bounds: LimitBounds, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        sess.validate_limits(memory_mb, cpus, pids, DEFAULTS, bounds)
    assert err.value.field == field


def test_limits_at_the_maxima_are_accepted() -> None:
    assert sess.validate_limits(8192, 2.0, 4096, DEFAULTS, LimitBounds()) == Limits(8192, 2.0, 4096)
    assert sess.validate_limits(0, 0, 0, DEFAULTS, LimitBounds()) == DEFAULTS
