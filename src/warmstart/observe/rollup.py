"""Per-minute summaries of the invocation records, kept next to them for `warmstart stats`.

Reading a million records takes SQLite seconds; a summary per function and minute (counts,
errors by type, GB-seconds, maximum concurrency, and log-scale histograms of Duration and Init
Duration) answers the same questions from a few hundred rows. The records writer updates them
in the transaction that adds the records, so both always agree.

Histograms have 64 buckets per doubling: a percentile read from one is within 0.55% of the
exact value. Maxima are kept exactly.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SCHEMA",
    "Cell",
    "Rollup",
    "bucket",
    "bucket_value",
    "percentile",
    "read_cells",
    "rebuild",
]

PER_DOUBLING = 64

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rollup (function TEXT NOT NULL, minute INTEGER NOT NULL, "
    "cell TEXT NOT NULL, PRIMARY KEY (function, minute))"
)

# Positions of the columns a cell reads in a records row (records.COLUMNS).
(_FUNCTION, _KIND, _INIT, _RESTORE, _DURATION, _BILLED, _MEMORY, _STATUS, _ERROR, _STARTED,
 _ARCH, _CONCURRENCY) = (1, 5, 6, 7, 8, 9, 10, 12, 13, 14, 18, 19)  # fmt: skip


def bucket(ms: float) -> int:
    """The histogram bucket of a duration in ms (64 per doubling, from 1 us)."""
    return max(0, int(math.log2(max(ms, 0.001) * 1000) * PER_DOUBLING))


def bucket_value(b: int) -> float:
    """The middle of a bucket, in ms (geometric)."""
    return float(2 ** ((b + 0.5) / PER_DOUBLING) / 1000)


def percentile(hist: dict[int, int], p: float, exact_max: float | None = None) -> float | None:
    """The p-th percentile (0-100) of a histogram; the exact maximum for p = 100."""
    total = sum(hist.values())
    if not total:
        return None
    if p >= 100 and exact_max is not None:
        return exact_max
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            value = bucket_value(b)
            return min(value, exact_max) if exact_max is not None else value
    return exact_max


@dataclass
class Cell:
    """What one function did in one minute (or, merged, over a span)."""

    invocations: int = 0  # throttled ones included
    throttles: int = 0
    cold: int = 0
    restores: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by error type (timeouts too)
    gb_seconds: dict[str, float] = field(default_factory=dict)  # billed, by architecture
    duration: Counter[int] = field(default_factory=Counter)  # histogram of Duration
    init: Counter[int] = field(default_factory=Counter)  # of Init (and Restore) Duration
    duration_max: float = 0.0
    init_max: float = 0.0
    concurrency_max: int = 0

    def add_row(self, row: tuple[Any, ...]) -> None:
        self.invocations += 1
        concurrency = row[_CONCURRENCY] or 0
        if concurrency > self.concurrency_max:
            self.concurrency_max = concurrency
        kind = row[_KIND]
        if kind == "throttled":
            self.throttles += 1
            return
        if row[_STATUS] != "success":
            self.errors[row[_ERROR] or row[_STATUS]] += 1
        started = row[_INIT] if row[_INIT] is not None else row[_RESTORE]
        if kind == "cold":
            self.cold += 1
        elif kind == "restore":
            self.restores += 1
        if started is not None:
            self.init[bucket(started)] += 1
            self.init_max = max(self.init_max, started)
        duration = row[_DURATION]
        if duration is not None:
            self.duration[bucket(duration)] += 1
            self.duration_max = max(self.duration_max, duration)
        if row[_BILLED] is not None and row[_MEMORY]:
            arch = row[_ARCH] or "x86_64"
            gbs = row[_BILLED] / 1000 * row[_MEMORY] / 1024
            self.gb_seconds[arch] = self.gb_seconds.get(arch, 0.0) + gbs

    def merge(self, other: Cell) -> None:
        self.invocations += other.invocations
        self.throttles += other.throttles
        self.cold += other.cold
        self.restores += other.restores
        self.errors.update(other.errors)
        for arch, gbs in other.gb_seconds.items():
            self.gb_seconds[arch] = self.gb_seconds.get(arch, 0.0) + gbs
        self.duration.update(other.duration)
        self.init.update(other.init)
        self.duration_max = max(self.duration_max, other.duration_max)
        self.init_max = max(self.init_max, other.init_max)
        self.concurrency_max = max(self.concurrency_max, other.concurrency_max)

    def dumps(self) -> str:
        return json.dumps([
            self.invocations, self.throttles, self.cold, self.restores, self.errors,
            self.gb_seconds, self.duration, self.init, self.duration_max, self.init_max,
            self.concurrency_max,
        ], separators=(",", ":"))  # fmt: skip

    @classmethod
    def loads(cls, text: str) -> Cell:
        inv, thr, cold, restores, errors, gbs, dur, init, dmax, imax, conc = json.loads(text)
        return cls(
            inv, thr, cold, restores, Counter(errors), gbs,
            Counter({int(k): v for k, v in dur.items()}),
            Counter({int(k): v for k, v in init.items()}), dmax, imax, conc,
        )  # fmt: skip


class Rollup:
    """The cells a batch of records adds to, merged into the table on `write`."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, int], Cell] = {}

    def add(self, row: tuple[Any, ...]) -> None:
        key = (row[_FUNCTION], int(row[_STARTED] // 60))
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        cell.add_row(row)

    def write(self, db: sqlite3.Connection) -> None:
        """Merge into the stored cells (inside the caller's transaction; the cells stay, for a
        transaction that failed to be tried again)."""
        for (function, minute), cell in self.cells.items():
            row = db.execute(
                "SELECT cell FROM rollup WHERE function = ? AND minute = ?", (function, minute)
            ).fetchone()
            if row is not None:
                stored = Cell.loads(row[0])
                stored.merge(cell)
                cell = stored
            db.execute(
                "INSERT OR REPLACE INTO rollup VALUES (?, ?, ?)", (function, minute, cell.dumps())
            )


def read_cells(
    db: sqlite3.Connection, function: str | None = None, since: float | None = None
) -> dict[str, Cell]:
    """The cells of every function (or one), merged per function, from `since` (epoch s) on."""
    sql = "SELECT function, cell FROM rollup WHERE 1"
    args: list[str | int] = []
    if function is not None:
        sql += " AND function = ?"
        args.append(function)
    if since is not None:
        sql += " AND minute >= ?"
        args.append(int(since // 60))
    merged: dict[str, Cell] = {}
    for fn, text in db.execute(sql, args):
        cell = Cell.loads(text)
        if fn in merged:
            merged[fn].merge(cell)
        else:
            merged[fn] = cell
    return merged


def rebuild(db: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Recompute every cell from records rows (for a database written before rollups)."""
    db.execute("DELETE FROM rollup")
    rollup = Rollup()
    for row in rows:
        rollup.add(row)
    rollup.write(db)
