"""REPORT lines: Lambda's format, Power Tuning's way of parsing, the billing rules."""

from __future__ import annotations

import pytest

from warmstart import Report, parse_report
from warmstart.observe.report import ReportParseError, billed_ms

REAL = (
    "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 26.73 ms\t"
    "Billed Duration: 27 ms\tMemory Size: 128 MB\tMax Memory Used: 75 MB\t"
    "Init Duration: 166.62 ms\t"
)


def test_parse_a_real_line():
    r = parse_report("START RequestId: x Version: $LATEST\nhello\n" + REAL + "\n")
    assert r == Report("3604209a-e9a3-11e6-939a-754dd98c7be3", 26.73, 27, 128, 75, 166.62)
    assert r.status == "success"


def test_format_round_trips():
    assert Report("3604209a-e9a3-11e6-939a-754dd98c7be3", 26.73, 27, 128, 75, 166.62).line() == REAL
    timeout = Report("id", 3000.0, 3000, 128, 40, None, status="timeout")
    assert timeout.line() == (
        "REPORT RequestId: id\tDuration: 3000.00 ms\tBilled Duration: 3000 ms"
        "\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout"
    )
    oom = Report("id", 12.5, 13, 128, 128, 80.0, status="error", error_type="Runtime.OutOfMemory")
    assert oom.line().endswith(
        "\tInit Duration: 80.00 ms\tStatus: error\tError Type: Runtime.OutOfMemory"
    )
    snap = Report("id", 1.0, 2, 512, 60, None, 398.97, 182)
    assert snap.line().endswith("\tRestore Duration: 398.97 ms\tBilled Restore Duration: 182 ms\t")
    for r in (timeout, oom, snap):
        assert parse_report(r.line()) == r


def test_json_record():
    r = Report("id", 18.5934, 19, 2048, 246, 120.1)
    assert r.record() == {
        "requestId": "id",
        "status": "success",
        "metrics": {
            "durationMs": 18.593,
            "billedDurationMs": 19,
            "memorySizeMB": 2048,
            "maxMemoryUsedMB": 246,
            "initDurationMs": 120.1,
        },
    }


def test_billing():
    # Observed on Lambda since INIT is billed: Duration 162.68 ms + Init 872.98 ms -> 1036 ms.
    assert billed_ms(162.68, 872.98) == 1036
    assert billed_ms(26.25) == 27
    assert billed_ms(27.0) == 27
    assert billed_ms(0.01) == 1
    assert billed_ms(26.999999999999996) == 27  # float noise is not a millisecond


def test_not_a_report():
    with pytest.raises(ReportParseError):
        parse_report("START RequestId: x")
    with pytest.raises(ReportParseError, match="without"):
        parse_report("REPORT RequestId: x\tDuration: 1.00 ms")
