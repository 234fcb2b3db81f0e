"""`--log-format json`: one JSON object per line, with time, level, logger, message and structured fields."""

from __future__ import annotations

import datetime
import json
import logging
import sys

import pytest

from control_plane import logs
from control_plane.cli.main import _parser


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "control_plane.sessions.manager", "levelno": logging.INFO,
                                  "levelname": "INFO", "msg": message, "args": args, **extra})  # fmt: skip
    made.created = 1_800_000_000.25
    return made


def test_a_json_line_has_the_fixed_keys_then_the_structured_fields() -> None:
    line = logs.JsonFormatter().format(record("session %s ended", "s-1", session_id="s-1", reason="idle"))
    assert "\n" not in line
    entry = json.loads(line)
    assert list(entry)[:4] == ["time", "level", "logger", "message"]
    assert entry == {
        "time": "2027-01-15T08:00:00.250+00:00",
        "level": "INFO",
        "logger": "control_plane.sessions.manager",
        "message": "session s-1 ended",
        "session_id": "s-1",
        "reason": "idle",
    }
    assert datetime.datetime.fromisoformat(entry["time"]).timestamp() == 1_800_000_000.25


def test_an_exception_and_a_multiline_message_stay_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        failed = record("cannot read\na message", exc_info=sys.exc_info(), path=object())
    line = logs.JsonFormatter().format(failed)
    entry = json.loads(line)
    assert "\n" not in line and entry["message"] == "cannot read\na message"
    assert "ValueError: bad" in entry["exception"] and entry["path"].startswith("<object")


def test_configure_sends_json_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("info", "json")
        logging.getLogger("sandgate").info("serving", extra={"grpc_addr": "127.0.0.1:1"})
        logging.getLogger("sandgate").debug("not at INFO")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["grpc_addr"] == "127.0.0.1:1"


def test_serve_takes_log_format_on_the_command_line() -> None:
    assert _parser().parse_args(["serve", "--log-format", "json"]).log_format == "json"
    assert _parser().parse_args(["serve"]).log_format is None  # then the log_format setting decides
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--log-format", "xml"])
