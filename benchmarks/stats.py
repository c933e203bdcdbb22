"""`warmstart stats` on a million records, against computing the same from the records table.

    .venv/bin/python benchmarks/stats.py                 # 1,000,000 records: docs/benchmarks.md
    .venv/bin/python benchmarks/stats.py --records 100000

Writes N records through the records store (the writer's own code path: rows, per-minute
summaries, one transaction per batch of 2,048), spread over 10 hours, three functions, with
cold starts, errors, throttles and concurrency. Then times `stats()` over everything and over
the last 10 minutes, and, as the baseline, the same figures computed exactly from the records
table (SQL aggregates plus sorting every duration in Python). It checks that both agree: counts
exactly, percentiles within the histograms' precision. Exit status 1 if they do not.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from warmstart.observe.records import DB_NAME, RecordStore  # noqa: E402
from warmstart.stats import PRECISION, stats  # noqa: E402

FUNCTIONS = ("Api", "Worker", "Cron")
SPAN_S = 10 * 3600


def generate(state: Path, n: int, seed: int = 7) -> float:
    """N records through RecordStore; returns the newest start time."""
    rng = random.Random(seed)
    store = RecordStore(state, True, "bench")
    now = time.time()
    start = now - SPAN_S
    batch: list[tuple[Any, ...]] = []
    seq = 0
    for i in range(n):
        fn = FUNCTIONS[i % 3]
        kind = "cold" if rng.random() < 0.02 else "warm"
        status, error = "success", None
        if rng.random() < 0.005:
            kind, status = "throttled", "throttled"
        elif rng.random() < 0.01:
            status, error = "error", rng.choice(("Runtime.Unknown", "ValueError"))
        duration = None if kind == "throttled" else rng.lognormvariate(3.0, 0.8)
        init = rng.uniform(80, 900) if kind == "cold" else None
        billed = None if duration is None else math.ceil(duration + (init or 0))
        record = (
            f"req-{i}", fn, "$LATEST", None, "env", kind, start + SPAN_S * i / n, 1.0, 0.5,
            False, "arm64" if fn == "Cron" else "x86_64", "", False, "arn", "", b"", "",
            "Unhandled" if error else None, error, duration, billed, 512 if fn == "Api" else 1024,
            60, init, None, None, status, error, rng.randint(1, 40),
        )  # fmt: skip
        batch.append(record)
        if len(batch) == 2048:
            seq += 1
            store.add(batch)
            store.commit(seq)
            batch = []
    if batch:
        store.add(batch)
        store.commit(seq + 1)
    store.close()
    return start + SPAN_S * (n - 1) / n


def exact(state: Path, since: float | None) -> dict[str, Any]:
    """The baseline: the same figures straight from the records table."""
    db = sqlite3.connect(state / DB_NAME)
    where, args = ("WHERE started_at >= ?", [since]) if since else ("", [])
    out: dict[str, Any] = {}
    for fn, count, throttles, cold, errors, maxc, gbs in db.execute(
        "SELECT function, count(*), sum(start_kind = 'throttled'), sum(start_kind = 'cold'), "
        "sum(status = 'error'), max(concurrency), sum(billed_ms / 1000.0 * memory_mb / 1024) "
        f"FROM invocations {where} GROUP BY function", args
    ):  # fmt: skip
        durations = sorted(r[0] for r in db.execute(
            f"SELECT duration_ms FROM invocations {where or 'WHERE 1'} AND function = ? "
            "AND duration_ms IS NOT NULL", [*args, fn]))  # fmt: skip
        k = len(durations)
        pct = {f"p{p}": durations[max(1, math.ceil(p / 100 * k)) - 1] for p in (50, 95, 99)}
        out[fn] = {"invocations": count, "throttles": throttles, "cold_starts": cold,
                   "errors": errors, "max_concurrency": maxc, "billed_gb_seconds": gbs,
                   "duration_ms": pct | {"max": durations[-1]}}  # fmt: skip
    db.close()
    return out


def agree(fast: dict[str, Any], slow: dict[str, Any], minute_aligned: bool) -> list[str]:
    problems = []
    for fn, want in slow.items():
        got = fast["functions"].get(fn)
        if got is None:
            problems.append(f"{fn} missing")
            continue
        keys = ("invocations", "throttles", "cold_starts", "errors", "max_concurrency")
        for key in keys if minute_aligned else ():
            if got[key] != want[key]:
                problems.append(f"{fn} {key}: {got[key]} != {want[key]}")
        for p, value in want["duration_ms"].items():
            if abs(got["duration_ms"][p] / value - 1) > PRECISION + 1e-3:
                problems.append(f"{fn} {p}: {got['duration_ms'][p]} vs {value}")
    return problems


def timed(f: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    value = f(*args)
    return value, round(time.perf_counter() - t, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        gen_start = time.perf_counter()
        newest = generate(state, args.records)
        gen_s = time.perf_counter() - gen_start
        # --since 10m counts whole minutes: the baseline starts at the same minute boundary.
        since = (newest - 600) // 60 * 60
        fast_all, fast_all_s = timed(stats, state)
        fast_recent, fast_recent_s = timed(stats, state, None, since)
        slow_all, slow_all_s = timed(exact, state, None)
        slow_recent, slow_recent_s = timed(exact, state, since)
    problems = agree(fast_all, slow_all, True) + agree(fast_recent, slow_recent, True)
    result = {
        "records": args.records,
        "write_us_per_record": round(gen_s / args.records * 1e6, 2),
        "stats_all_s": fast_all_s,
        "stats_last_10m_s": fast_recent_s,
        "baseline_all_s": slow_all_s,
        "baseline_last_10m_s": slow_recent_s,
        "speedup_all": round(slow_all_s / fast_all_s, 1),
        "agree": not problems,
        "problems": problems,
        "targets": {"stats_all_s<=1": fast_all_s <= 1.0},
        "sample": fast_all["functions"]["Api"],
    }
    print(json.dumps(result, indent=2))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
