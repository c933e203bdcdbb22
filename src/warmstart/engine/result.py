"""The outcome of one invocation, as callers see it."""

from __future__ import annotations

from typing import Any

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

    __slots__ = (
        "_log",
        "_payload",
        "architecture",
        "arn",
        "cpu_ms",
        "cpu_throttled",
        "environment_id",
        "error_type",
        "function_error",
        "function_name",
        "init_text",
        "json_logs",
        "latency_ms",
        "output",
        "platform_text",
        "qualifier",
        "raw",
        "report",
        "request_id",
        "start_kind",
        "started_at",
        "stream",
        "version",
    )

    def __init__(
        self,
        request_id: str,
        function_name: str,
        version: str,
        qualifier: str | None,
        arn: str,
        raw: bytes,
        function_error: str | None,
        error_type: str | None,
        report: Report,
        start_kind: str,
        environment_id: str | None,
        stream: str | None,
        started_at: float,
        latency_ms: float,
        cpu_ms: float,
        cpu_throttled: bool,
        architecture: str,
        json_logs: bool,
        init_text: str = "",
        output: bytes = b"",
        platform_text: str = "",
    ) -> None:
        self.request_id = request_id
        self.function_name = function_name
        self.version = version  # the version that ran ($LATEST or a number)
        self.qualifier = qualifier  # what the caller asked for (an alias, a version or None)
        self.arn = arn
        self.raw = raw
        self.function_error = function_error  # None or "Unhandled"
        self.error_type = error_type
        self.report = report
        self.start_kind = start_kind  # cold | warm | provisioned
        self.environment_id = environment_id
        self.stream = stream
        self.started_at = started_at
        self.latency_ms = latency_ms
        self.cpu_ms = cpu_ms
        self.cpu_throttled = cpu_throttled
        self.architecture = architecture
        self.json_logs = json_logs
        self.init_text = init_text
        self.output = output
        self.platform_text = platform_text
        self._payload = _UNSET
        self._log: str | None = None

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
    def executed_version(self) -> str:
        return self.version

    @property
    def cold(self) -> bool:
        return self.start_kind == "cold"

    @property
    def log(self) -> str:
        """This invocation's log: INIT_START (cold only), START, output, END, REPORT."""
        if self._log is None:
            self._log = render_log(self.record())
        return self._log

    def record(self) -> tuple[Any, ...]:
        """What is kept of the invocation: its row, and what its log text is made of.

        Plain values only: the garbage collector stops tracking such tuples, so a backlog of
        records waiting to be written costs collections nothing.
        """
        return (
            self.row(),
            self.function_name,
            self.stream,
            self.init_text,
            self.output,
            self.platform_text,
            self.json_logs,
            self.arn,
            tuple(self.report),
        )

    @property
    def status(self) -> str:
        """success, error (function or runtime error) or timeout."""
        if self.report.status != "success":
            return self.report.status
        return "error" if self.function_error else "success"

    def row(self) -> tuple[Any, ...]:
        """The invocation record (see observe/records.py COLUMNS)."""
        r = self.report
        return (
            self.request_id,
            self.function_name,
            self.version,
            self.qualifier,
            self.environment_id,
            self.start_kind,
            r.init_duration_ms,
            r.restore_duration_ms,
            r.duration_ms,
            r.billed_duration_ms,
            r.memory_size_mb,
            r.max_memory_used_mb,
            self.status,
            self.error_type,
            self.started_at,
            self.latency_ms,
            self.cpu_ms,
            int(self.cpu_throttled),
            self.architecture,
        )

    def __repr__(self) -> str:
        err = f" {self.error_type}" if self.error_type else ""
        return (
            f"<InvokeResult {self.function_name}:{self.version} {self.start_kind} "
            f"{self.report.duration_ms:.2f} ms{err}>"
        )
