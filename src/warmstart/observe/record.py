"""An invocation record: what is kept of one invocation, as one flat tuple of plain values.

The engine builds it (an InvokeResult is a view over one), the writer turns it into a database
row (see records.COLUMNS) and a log text (see logs.render_log). The garbage collector stops
tracking tuples of plain values, so records waiting to be written cost collections nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REPORT", "record_status", "row_of"]

(
    REQUEST_ID, FUNCTION, VERSION, QUALIFIER, ENVIRONMENT_ID, START_KIND, STARTED_AT, LATENCY_MS,
    CPU_MS, CPU_THROTTLED, ARCHITECTURE, STREAM, JSON_LOGS, ARN, INIT_TEXT, OUTPUT, PLATFORM_TEXT,
    FUNCTION_ERROR, ERROR_TYPE,
    # the REPORT line, after its request id (see observe.report.Report)
    DURATION_MS, BILLED_MS, MEMORY_MB, MAX_MEMORY_MB, INIT_MS, RESTORE_MS, BILLED_RESTORE_MS,
    REPORT_STATUS, REPORT_ERROR_TYPE,
    CONCURRENCY,  # the function's invocations in flight, this one included (throttled: without)
) = range(29)  # fmt: skip
REPORT = slice(DURATION_MS, REPORT_ERROR_TYPE + 1)


def record_status(rec: tuple[Any, ...]) -> str:
    """success, error (a function or runtime error), timeout or throttled."""
    status: str = rec[REPORT_STATUS]
    return "error" if status == "success" and rec[FUNCTION_ERROR] else status


def row_of(rec: tuple[Any, ...]) -> tuple[Any, ...]:
    """The database row of a record (the columns of COLUMNS, in order)."""
    throttled = rec[CPU_THROTTLED]
    cpu_throttled = None if throttled is None else int(throttled)
    return (
        rec[REQUEST_ID], rec[FUNCTION], rec[VERSION], rec[QUALIFIER], rec[ENVIRONMENT_ID],
        rec[START_KIND], rec[INIT_MS], rec[RESTORE_MS], rec[DURATION_MS], rec[BILLED_MS],
        rec[MEMORY_MB], rec[MAX_MEMORY_MB], record_status(rec), rec[ERROR_TYPE],
        rec[STARTED_AT], rec[LATENCY_MS], rec[CPU_MS], cpu_throttled, rec[ARCHITECTURE],
        rec[CONCURRENCY],
    )  # fmt: skip
