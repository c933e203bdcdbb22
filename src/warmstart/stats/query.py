"""What the invocation records say, per function: `warmstart stats`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..observe.records import database_exists, opened
from ..observe.rollup import Cell, percentile, read_cells
from ..pricing import default_prices

__all__ = ["PRECISION", "stats"]

PRECISION = 0.0055  # percentiles come from histograms with 64 buckets per doubling


def _spread(hist: dict[int, int], exact_max: float) -> dict[str, float] | None:
    if not sum(hist.values()):
        return None
    out = {f"p{p}": percentile(hist, p, exact_max) for p in (50, 95, 99)}
    # Six decimals: warm durations are often a few microseconds.
    return {k: round(v, 6) for k, v in out.items() if v is not None} | {"max": round(exact_max, 6)}


def _summary(cell: Cell, region: str) -> dict[str, Any]:
    prices = default_prices().region(region)
    ran = cell.invocations - cell.throttles
    compute = sum(gbs * prices.first_tier(arch) for arch, gbs in cell.gb_seconds.items()
                  if arch in prices.duration)  # fmt: skip
    requests = ran * prices.request_per_million / 1e6
    return {
        "invocations": cell.invocations,
        "throttles": cell.throttles,
        "errors": sum(cell.errors.values()),
        "errors_by_type": dict(cell.errors.most_common()),
        "cold_starts": cell.cold + cell.restores,
        "restores": cell.restores,
        "cold_start_pct": round(100 * (cell.cold + cell.restores) / ran, 3) if ran else 0.0,
        "duration_ms": _spread(cell.duration, cell.duration_max),
        "init_ms": _spread(cell.init, cell.init_max),
        "max_concurrency": cell.concurrency_max,
        "billed_gb_seconds": round(sum(cell.gb_seconds.values()), 6),
        "cost": {
            "compute": compute,
            "requests": requests,
            "total": compute + requests,
            "note": "first-tier on-demand prices, no free tier",
        },
    }


def stats(
    state_dir: Path,
    function: str | None = None,
    since: float | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """Invocations, errors, throttles, cold starts, duration and init percentiles, concurrency
    and cost, per function and for all of them, from `since` (epoch seconds, to the minute) on;
    and `unwritten`: records a running engine could not write (a full disk), which are missing
    from those figures. StateDatabaseError if the database cannot be used.

    Example: stats(Path(".warmstart"), "Hello", since=time.time() - 600)["functions"]["Hello"]
    """
    if not database_exists(state_dir):
        return {"since": since, "functions": {}, "all": None, "precision": PRECISION,
                "unwritten": []}  # fmt: skip
    with opened(state_dir) as db:
        cells = read_cells(db, function, since)
        unwritten = _unwritten(db, function, since)
    total = Cell()
    for cell in cells.values():
        total.merge(cell)
    return {
        "since": since,
        "precision": PRECISION,
        "functions": {name: _summary(cells[name], region) for name in sorted(cells)},
        "all": _summary(total, region) if cells else None,
        "unwritten": unwritten,
    }


def _unwritten(
    db: sqlite3.Connection, function: str | None, since: float | None
) -> list[dict[str, Any]]:
    """What engines could not write: records of a function, started from `first` to `last`."""
    sql = "SELECT function, records, first_at, last_at, reason FROM dropped WHERE 1"
    args: list[str | float] = []
    if function is not None:
        sql += " AND function = ?"
        args.append(function)
    if since is not None:
        sql += " AND last_at >= ?"
        args.append(since)
    rows = db.execute(sql + " ORDER BY first_at", args)
    keys = ("function", "records", "first", "last", "reason")
    return [dict(zip(keys, row, strict=True)) for row in rows]
