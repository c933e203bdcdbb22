"""What warmstart measures and keeps: REPORT lines, log streams, invocation records."""

from .records import RecordWriter, connect, query
from .report import Report, ReportParseError, billed_ms, parse_report

__all__ = [
    "RecordWriter",
    "Report",
    "ReportParseError",
    "billed_ms",
    "connect",
    "parse_report",
    "query",
]
