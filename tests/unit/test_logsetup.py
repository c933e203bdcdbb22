"""Log formats inside environments: the AWS runtime's text and JSON formats."""

from __future__ import annotations

import json
import logging

from warmstart.engine.runtime import logsetup


def record(msg="hello %s", args=("you",), level=logging.WARNING, exc_info=None):
    return logging.LogRecord("app", level, "/var/task/app.py", 3, msg, args, exc_info, "handler")


def test_text_format():
    fmt = logging.Formatter(logsetup.TEXT_FORMAT, logsetup.TIME_FORMAT)
    fmt.converter = __import__("time").gmtime
    r = record()
    r.aws_request_id = "rid"
    line = fmt.format(r)
    assert line.startswith("[WARNING]\t") and line.endswith("\trid\thello you\n")


def test_json_format():
    r = record()
    r.aws_request_id = "rid"
    r.order = 7  # extra= fields appear as keys
    out = json.loads(logsetup.JsonFormatter().format(r))
    assert list(out)[:4] == ["timestamp", "level", "message", "logger"]
    assert out["level"] == "WARNING" and out["message"] == "hello you" and out["order"] == 7
    assert out["requestId"] == "rid" and out["timestamp"].endswith("Z")
    try:
        print(1 / 0)
    except ZeroDivisionError:
        import sys

        r = record(exc_info=sys.exc_info())
    r.aws_request_id = "rid"
    out = json.loads(logsetup.JsonFormatter().format(r))
    assert (
        out["errorType"] == "ZeroDivisionError" and out["location"] == "/var/task/app.py:handler:3"
    )


def test_error_lines():
    logsetup.json_mode = False
    lines = logsetup.error_lines(
        {
            "errorMessage": "boom",
            "errorType": "ValueError",
            "stackTrace": ['  File "a.py", line 1, in h\n    x()\n'],
        }
    )
    assert lines == [
        "[ERROR] ValueError: boom",
        "Traceback (most recent call last):",
        '\u00a0\u00a0File "a.py", line 1, in h',
        "\u00a0\u00a0\u00a0\u00a0x()",
    ]
    # The Traceback line appears even with an empty stack trace, as in the AWS runtime.
    assert logsetup.error_lines({"errorMessage": "m", "errorType": "T", "stackTrace": []}) == [
        "[ERROR] T: m",
        "Traceback (most recent call last):",
    ]
