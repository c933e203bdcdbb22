"""The outcome of one invocation, as callers see it: a view over its record."""

from __future__ import annotations

from typing import Any

from ..observe import record as r
from ..observe.logs import render_log
from ..observe.report import Report
from .runtime import jsonfast

__all__ = ["InvokeResult"]

_UNSET: Any = object()


class InvokeResult:
    """What an invocation returned, with its log and REPORT.

    Example:
        res = rt.invoke("Hello", {"k": "v"})
        res.payload, res.function_error, res.report.duration_ms, print(res.log)
    """

    __slots__ = ("_log", "_payload", "_report", "raw", "record")

    def __init__(self, record: tuple[Any, ...], raw: bytes) -> None:
        self.record = record  # see observe/record.py; what the records writer keeps
        self.raw = raw  # the response payload as the handler's runtime sent it
        self._payload = _UNSET
        self._log: str | None = None
        self._report: Report | None = None

    @property
    def payload(self) -> Any:
        """The decoded JSON result, or the error JSON on a function error (bytes if not JSON)."""
        if self._payload is _UNSET:
            try:
                self._payload = jsonfast.loads(self.raw) if self.raw else None
            except ValueError:
                self._payload = self.raw
        return self._payload

    @property
    def report(self) -> Report:
        """The REPORT line's fields: request_id, duration_ms, billed_duration_ms, ..."""
        if self._report is None:
            self._report = Report(self.record[r.REQUEST_ID], *self.record[r.REPORT])
        return self._report

    @property
    def log(self) -> str:
        """This invocation's log: INIT_START (cold only), START, output, END, REPORT."""
        if self._log is None:
            self._log = render_log(self.record)
        return self._log

    @property
    def request_id(self) -> str:
        return str(self.record[r.REQUEST_ID])

    @property
    def function_name(self) -> str:
        return str(self.record[r.FUNCTION])

    @property
    def version(self) -> str:
        """The version that ran: $LATEST or a number."""
        return str(self.record[r.VERSION])

    executed_version = version

    @property
    def qualifier(self) -> str | None:
        """What the caller asked for: an alias, a version, or None."""
        q: str | None = self.record[r.QUALIFIER]
        return q

    @property
    def arn(self) -> str:
        return str(self.record[r.ARN])

    @property
    def function_error(self) -> str | None:
        """None, or "Unhandled" (Lambda's X-Amz-Function-Error)."""
        e: str | None = self.record[r.FUNCTION_ERROR]
        return e

    @property
    def error_type(self) -> str | None:
        e: str | None = self.record[r.ERROR_TYPE]
        return e

    @property
    def start_kind(self) -> str:
        """cold, warm or provisioned."""
        return str(self.record[r.START_KIND])

    @property
    def cold(self) -> bool:
        return bool(self.record[r.START_KIND] == "cold")

    @property
    def environment_id(self) -> str:
        return str(self.record[r.ENVIRONMENT_ID])

    @property
    def stream(self) -> str:
        """The environment's log stream name."""
        return str(self.record[r.STREAM])

    @property
    def started_at(self) -> float:
        return float(self.record[r.STARTED_AT])

    @property
    def latency_ms(self) -> float:
        """From the call to the result, INIT included: what the caller waited."""
        return float(self.record[r.LATENCY_MS])

    @property
    def cpu_ms(self) -> float:
        """CPU time the environment spent on this invocation."""
        return float(self.record[r.CPU_MS])

    @property
    def cpu_throttled(self) -> bool:
        return bool(self.record[r.CPU_THROTTLED])

    @property
    def status(self) -> str:
        """success, error (function or runtime error) or timeout."""
        return r.record_status(self.record)

    def row(self) -> tuple[Any, ...]:
        """The invocation's database row (see observe/records.py COLUMNS)."""
        return r.row_of(self.record)

    def __repr__(self) -> str:
        err = f" {self.error_type}" if self.error_type else ""
        return (
            f"<InvokeResult {self.function_name}:{self.version} {self.start_kind} "
            f"{self.report.duration_ms:.2f} ms{err}>"
        )
