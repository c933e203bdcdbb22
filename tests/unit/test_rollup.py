"""Per-minute summaries: histogram precision, merging, storage."""

from __future__ import annotations

import math
import random

from warmstart.observe.rollup import Cell, bucket, bucket_value, percentile


def test_bucket_precision():
    for ms in (0.004, 0.5, 1.0, 33.3, 1234.5, 900_000.0):
        assert abs(bucket_value(bucket(ms)) / ms - 1) < 0.0055


def test_percentiles_of_a_histogram_match_nearest_rank():
    rng = random.Random(3)
    values = [rng.lognormvariate(2, 1) for _ in range(20_000)]
    hist: dict[int, int] = {}
    for v in values:
        hist[bucket(v)] = hist.get(bucket(v), 0) + 1
    s = sorted(values)
    for p in (50, 95, 99):
        exact = s[math.ceil(p / 100 * len(s)) - 1]
        assert abs(percentile(hist, p, s[-1]) / exact - 1) < 0.0055
    assert percentile(hist, 100, s[-1]) == s[-1]
    assert percentile({}, 50) is None


ROW = ("id", "Fn", "$LATEST", None, "env", "cold", 120.0, None, 10.0, 131, 1024, 40, "error",
       "ValueError", 600.0, 1.0, 0.5, 0, "arm64", 3)  # fmt: skip


def test_cells_count_merge_and_round_trip():
    a, b = Cell(), Cell()
    a.add_row(ROW)
    b.add_row((*ROW[:5], "throttled", *ROW[6:19], 7))
    b.add_row((*ROW[:5], "warm", None, *ROW[7:12], "success", None, *ROW[14:]))
    a.merge(b)
    assert (a.invocations, a.throttles, a.cold, a.concurrency_max) == (3, 1, 1, 7)
    assert a.errors == {"ValueError": 1}
    assert a.gb_seconds == {"arm64": 2 * 0.131}
    assert sum(a.duration.values()) == 2 and sum(a.init.values()) == 1
    assert a.init_max == 120.0 and a.duration_max == 10.0
    assert Cell.loads(a.dumps()) == a
