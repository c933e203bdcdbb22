"""Logging inside an environment, in the formats of the AWS Python runtime.

TEXT: `[LEVEL]\\t<UTC time>.<ms>Z\\t<request id>\\t<message>`; JSON: one object per record.
The root logger stays at WARNING unless AWS_LAMBDA_LOG_LEVEL is set, as in the AWS runtime.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Traceback lines in text-mode error logs are indented with no-break spaces, as in the AWS runtime.
NBSP = "\u00a0"

request_id = ""  # the current invocation's, read by the filter on every record
json_mode = False
sink: LogSink

_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "aws_request_id", "tenant_id", "taskName"}
)


class LogSink:
    """Where log records go: the environment's stdout, which the pool collects per invocation."""

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)

    def log_error(self, lines: list[str]) -> None:
        # One log event on Lambda (the telemetry sink keeps the lines together).
        sys.stdout.write("\n".join(lines) + "\n")


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink: LogSink) -> None:
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(self.format(record))


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = request_id
        record.tenant_id = None
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt=JSON_TIME_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        level = min(50, max(0, record.levelno)) // 10 * 10
        record.levelno = level
        record.levelname = logging.getLevelName(level)
        msg = (
            record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        )
        out: dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": msg,
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            exc = record.exc_info[1]
            out["stackTrace"] = traceback.format_tb(record.exc_info[2])
            out["errorType"] = type(exc).__name__
            out["errorMessage"] = str(exc)
        out["requestId"] = getattr(record, "aws_request_id", "")
        if record.exc_info:
            out["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and value is not None:
                out[key] = value
        return json.dumps(out, ensure_ascii=False, default=str) + "\n"


def setup(log_format: str, log_level: str) -> LogSink:
    """Install the runtime's handler on the root logger and return the sink errors go to."""
    global json_mode, sink
    json_mode = log_format.upper() == "JSON"
    logging.Formatter.converter = time.gmtime
    sink = LogSink()
    handler = LambdaLoggerHandler(sink)
    if json_mode:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TIME_FORMAT))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = "DEBUG" if log_level == "TRACE" else log_level.upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)
    return sink


def error_lines(error: dict[str, Any]) -> list[str]:
    """The lines the AWS runtime logs for an error result, in the active format."""
    if json_mode:
        stamp = time.strftime(JSON_TIME_FORMAT, time.gmtime())
        return [json.dumps({"timestamp": stamp, "level": "ERROR", **error}, ensure_ascii=False)]
    head = "[ERROR]"
    if error.get("errorType"):
        head += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            head += ":"
        head += " " + error["errorMessage"]
    lines = [head]
    trace = error.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(NBSP * (len(line) - len(stripped)) + stripped)
    return lines


def env_log_settings() -> tuple[str, str]:
    """(format, level) from the environment variables the platform sets."""
    fmt = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "")
    return ("JSON" if fmt.upper() == "JSON" else "TEXT"), os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")
