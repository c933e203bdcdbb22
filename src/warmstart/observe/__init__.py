"""What warmstart measures and keeps: REPORT lines, log streams, invocation records."""

from .records import RecordStore, connect, query
from .report import Report, ReportParseError, billed_ms, parse_report

__all__ = [
    "RecordStore",
    "Report",
    "ReportParseError",
    "billed_ms",
    "connect",
    "parse_report",
    "query",
]
