"""REPORT lines: the one measurement source. Format them as Lambda does, parse them as tools do."""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

__all__ = ["Report", "ReportParseError", "billed_ms", "parse_report"]


def billed_ms(duration_ms: float, init_ms: float | None = None) -> int:
    """Billed Duration: the 1 ms ceiling of Duration (plus Init Duration when INIT is billed).

    Example: billed_ms(162.68, 872.98) -> 1036
    """
    total = duration_ms + init_ms if init_ms else duration_ms
    # The epsilon keeps float noise (27.000000001) from billing a whole extra millisecond.
    return max(1, math.ceil(total - 1e-9))


class Report(NamedTuple):
    """A parsed (or about to be printed) REPORT line. A tuple: cheap on the invoke path."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    restore_duration_ms: float | None = None
    billed_restore_duration_ms: int | None = None
    status: str = "success"  # success | error | timeout, as the REPORT line says
    error_type: str | None = None

    def line(self) -> str:
        """The text-format REPORT line, without the newline.

        Example: REPORT RequestId: 8f...\\tDuration: 1.20 ms\\tBilled Duration: 2 ms\\t...
        """
        s = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_duration_ms} ms\t"
            f"Memory Size: {self.memory_size_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB\t"
        )
        if self.init_duration_ms is not None:
            s += f"Init Duration: {self.init_duration_ms:.2f} ms\t"
        if self.restore_duration_ms is not None:
            s += (
                f"Restore Duration: {self.restore_duration_ms:.2f} ms\t"
                f"Billed Restore Duration: {self.billed_restore_duration_ms} ms\t"
            )
        if self.status == "timeout":
            s += "Status: timeout"
        elif self.status == "error":
            s += f"Status: error\tError Type: {self.error_type}"
        return s

    def record(self) -> dict[str, Any]:
        """The `record` of the JSON-format platform.report event."""
        metrics: dict[str, Any] = {
            "durationMs": round(self.duration_ms, 3),
            "billedDurationMs": self.billed_duration_ms,
            "memorySizeMB": self.memory_size_mb,
            "maxMemoryUsedMB": self.max_memory_used_mb,
        }
        if self.init_duration_ms is not None:
            metrics["initDurationMs"] = round(self.init_duration_ms, 3)
        if self.restore_duration_ms is not None:
            metrics["restoreDurationMs"] = round(self.restore_duration_ms, 3)
            metrics["billedRestoreDurationMs"] = self.billed_restore_duration_ms
        out: dict[str, Any] = {
            "requestId": self.request_id,
            "metrics": metrics,
            "status": self.status,
        }
        if self.status == "error" and self.error_type:
            out["errorType"] = self.error_type
        return out


class ReportParseError(ValueError):
    """The text is not a REPORT line."""


_FIELD = re.compile(r"([A-Za-z][A-Za-z ]*): ([^\t]+)")
_NUMBERS = {
    "Duration": ("duration_ms", float),
    "Billed Duration": ("billed_duration_ms", int),
    "Memory Size": ("memory_size_mb", int),
    "Max Memory Used": ("max_memory_used_mb", int),
    "Init Duration": ("init_duration_ms", float),
    "Restore Duration": ("restore_duration_ms", float),
    "Billed Restore Duration": ("billed_restore_duration_ms", int),
}


def parse_report(text: str) -> Report:
    """Parse a REPORT line (or find the first one in a log), as Power Tuning reads them.

    Example: parse_report(log).billed_duration_ms
    """
    start = text.find("REPORT RequestId: ")
    if start < 0:
        raise ReportParseError("no REPORT line")
    line = text[start:].split("\n", 1)[0]
    fields: dict[str, Any] = {}
    for key, value in _FIELD.findall(line):
        value = value.strip()
        if key == "REPORT RequestId":
            fields["request_id"] = value
        elif key in _NUMBERS:
            name, kind = _NUMBERS[key]
            fields[name] = kind(float(value.split()[0])) if kind is int else float(value.split()[0])
        elif key == "Status":
            fields["status"] = value
        elif key == "Error Type":
            fields["error_type"] = value
    missing = {
        "request_id",
        "duration_ms",
        "billed_duration_ms",
        "memory_size_mb",
        "max_memory_used_mb",
    } - fields.keys()
    if missing:
        raise ReportParseError(f"REPORT line without {', '.join(sorted(missing))}")
    return Report(**fields)
