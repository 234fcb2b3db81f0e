"""runsc's version at start: parsing `runsc --version`, and the decision to run, warn or refuse."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from control_plane.domain.runsc_version import MINIMUM, RECOMMENDED, RunscVersion, decide, parse
from control_plane.errors import FailedPrecondition
from control_plane.sessions.runsc_check import check_runsc, version_output

BOOKWORM = "runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n"  # what Debian bookworm's runsc prints
BACKPORTS = "runsc version 0.0~20240729.0\nspec: 1.1.0\n"
UPSTREAM = "runsc version release-20250512.0\nspec: 1.1.0-rc.1\n"


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (BOOKWORM, RunscVersion(20221219, 0)),
        (BACKPORTS, RunscVersion(20240729, 0)),
        (UPSTREAM, RunscVersion(20250512, 0)),
        ("runsc version release-20240513.3\n", RunscVersion(20240513, 3)),
        ("runsc version 20230102\n", RunscVersion(20230102, 0)),
        ("warning: something first\nrunsc version release-20231009.0\nspec: 1.0.2\n", RunscVersion(20231009, 0)),
        ("runsc version VERSION_MISSING\nspec: 1.1.0\n", None),
        ("runsc version 0.0~20221399.0\n", None),  # no 13th month
        ("runsc version 120221219.0\n", None),  # nine digits are no date
        ("", None),
    ],
)
def test_parse(text: str, version: RunscVersion | None) -> None:
    assert parse(text) == version


def test_versions_order_by_date_then_patch() -> None:
    assert RunscVersion(20221219, 0) < RunscVersion(20221219, 1) < RunscVersion(20230101, 0)
    assert str(RunscVersion(20240729, 2)) == "20240729.2" and RunscVersion(20240729).released == "2024-07-29"
    assert parse(BOOKWORM) == MINIMUM and parse(BACKPORTS) == RECOMMENDED


def test_the_recommended_release_runs_without_a_word() -> None:
    for text in (BACKPORTS, UPSTREAM):
        verdict = decide(text)
        assert not verdict.refuse and verdict.reason == "" and verdict.version == parse(text)


def test_bookworms_release_runs_with_a_warning_that_says_why() -> None:
    verdict = decide(BOOKWORM)
    assert not verdict.refuse
    assert verdict.reason == (
        "runsc 20221219.0 (released 2022-12-19) is older than 20240729.0, the release Debian bookworm-backports "
        "offers, and misses gVisor's fixes since; scripts/setup.sh installs it"
    )


def test_an_older_release_is_refused_with_the_reason() -> None:
    verdict = decide("runsc version release-20220510.0\n")
    assert verdict.refuse and verdict.version == RunscVersion(20220510, 0)
    assert verdict.reason.startswith("runsc 20220510.0 (released 2022-05-10) is older than 20221219.0, the oldest")
    assert "bookworm-backports" in verdict.reason


def test_an_unreadable_or_missing_version_warns_and_says_what_is_needed() -> None:
    unreadable = decide("runsc version VERSION_MISSING\n")
    assert not unreadable.refuse and unreadable.version is None
    assert unreadable.reason == (
        "cannot read a release in `runsc --version` ('runsc version VERSION_MISSING'); "
        "Sandgate needs 20221219.0 or newer"
    )
    missing = decide(None, "cannot run /usr/bin/runsc: no such file")
    assert not missing.refuse
    assert missing.reason == (
        "could not check runsc's version (cannot run /usr/bin/runsc: no such file); Sandgate needs 20221219.0 or newer"
    )


def test_thresholds_are_parameters() -> None:
    assert decide(BACKPORTS, minimum=RunscVersion(20250101)).refuse


def test_setup_installs_the_recommended_release() -> None:
    setup = (Path(__file__).resolve().parents[2] / "scripts" / "setup.sh").read_text()
    assert f"RUNSC_RECOMMENDED=0.0~{RECOMMENDED}" in setup


class Runtime:
    def __init__(self, binary: str) -> None:
        self.binary = binary

    async def runtime_binary(self) -> str:
        return self.binary


def fake_runsc(tmp_path: Path, output: str, code: int = 0) -> str:
    path = tmp_path / "runsc"
    path.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\nexit {code}\n")
    path.chmod(0o755)
    return str(path)


def test_version_output_runs_the_binary_and_says_why_it_could_not(tmp_path: Path) -> None:
    assert version_output(fake_runsc(tmp_path, BACKPORTS)) == (BACKPORTS, "")
    output, problem = version_output(str(tmp_path / "absent"))
    assert output is None and problem.startswith(f"cannot run {tmp_path / 'absent'}")
    output, problem = version_output(fake_runsc(tmp_path, "", code=3))
    assert output is None and "exited with 3" in problem


def test_check_refuses_an_old_runsc_and_warns_for_bookworms(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(FailedPrecondition, match=r"refusing to start: runsc 20220510.0 \(released 2022-05-10\)"):
        asyncio.run(check_runsc(Runtime(fake_runsc(tmp_path, "runsc version release-20220510.0\n"))))
    with caplog.at_level(logging.WARNING):
        verdict = asyncio.run(check_runsc(Runtime(fake_runsc(tmp_path, BOOKWORM))))
    assert not verdict.refuse and verdict.reason in caplog.text
