"""Invocation records in SQLite, and the store that writes them with their log text.

One row per invocation attempt (throttles included), in `<state dir>/warmstart.db` (WAL mode, so
readers such as `warmstart stats` never block a running engine). The store also appends each
invocation's log text to its environment's log stream file. It runs in the records writer's
process (see writer.py).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import rollup
from .logs import render_log, stream_path
from .record import FUNCTION, STREAM, row_of

__all__ = ["COLUMNS", "RecordStore", "connect", "query"]

DB_NAME = "warmstart.db"
COLUMNS = (
    ("request_id", "TEXT NOT NULL"),
    ("function", "TEXT NOT NULL"),
    ("version", "TEXT"),
    ("qualifier", "TEXT"),
    ("environment_id", "TEXT"),
    ("start_kind", "TEXT"),  # cold | warm | provisioned | restore | throttled
    ("init_ms", "REAL"),
    ("restore_ms", "REAL"),
    ("duration_ms", "REAL"),
    ("billed_ms", "INTEGER"),
    ("memory_mb", "INTEGER"),
    ("max_memory_mb", "INTEGER"),
    ("status", "TEXT"),  # success | error | timeout | throttled
    ("error_type", "TEXT"),
    ("started_at", "REAL"),  # epoch seconds, when the caller asked
    ("latency_ms", "REAL"),  # caller to result, INIT included
    ("cpu_ms", "REAL"),
    ("cpu_throttled", "INTEGER"),
    ("architecture", "TEXT"),
    ("concurrency", "INTEGER"),  # the function's invocations in flight when it started
)
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS invocations ({', '.join(f'{n} {t}' for n, t in COLUMNS)})",
    # One index: each one costs ~1.5 us per inserted row, and per-function queries need it.
    "CREATE INDEX IF NOT EXISTS invocations_function_time ON invocations (function, started_at)",
    # The last batch each running writer committed, so that a batch sent again after the
    # writer's process died is not written twice.
    "CREATE TABLE IF NOT EXISTS writers (writer TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    rollup.SCHEMA,
)


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the records database.

    Example: connect(Path(".warmstart")).execute("SELECT count(*) FROM invocations")
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / DB_NAME, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    had_rollup = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollup'"
    ).fetchone()
    for stmt in _SCHEMA:
        db.execute(stmt)
    # A database from an older warmstart lacks the newer columns: add them (NULL in old rows),
    # and the per-minute summaries: computed once from its records.
    have = {row[1] for row in db.execute("PRAGMA table_info(invocations)")}
    for name, kind in COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE invocations ADD COLUMN {name} {kind}")
    if not had_rollup:
        columns = ", ".join(name for name, _ in COLUMNS)
        rollup.rebuild(db, db.execute(f"SELECT {columns} FROM invocations"))
    db.commit()
    return db


def query(state_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    db = connect(state_dir)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, params))
    finally:
        db.close()


class RecordStore:
    """Writes batches of records (and log text) to the database and the log stream files.

    Rows go in one transaction per batch, with the batch's number; log text is appended to each
    stream's file after the commit.

    Example: s = RecordStore(Path(".warmstart")); s.add(records); s.commit(1); s.close()
    """

    OPEN_STREAMS = 256  # log files kept open

    def __init__(self, state_dir: Path, records: bool = True, writer: str = "") -> None:
        self.state_dir = state_dir
        self.records = records
        self.writer = writer
        self._db: sqlite3.Connection | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._rollup = rollup.Rollup()
        self._texts: dict[tuple[str, str], list[str]] = {}  # log text not yet appended
        self._files: dict[Path, int] = {}

    def committed(self) -> int:
        """The number of the last batch this writer committed (0: none)."""
        if not self.records:
            return 0
        row = (
            self._conn()
            .execute("SELECT seq FROM writers WHERE writer = ?", (self.writer,))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def add(self, items: Iterable[tuple[Any, ...]]) -> None:
        """Records (see record.py), or (function, stream, text) to append to a log stream."""
        rows, texts = self._rows, self._texts
        for item in items:
            if len(item) == 3:
                function, stream, text = item
            else:
                if self.records:
                    row = row_of(item)
                    rows.append(row)
                    self._rollup.add(row)
                function, stream = item[FUNCTION], item[STREAM]
                if not stream:
                    continue
                text = render_log(item)
            texts.setdefault((function, stream), []).append(text)

    def commit(self, seq: int) -> None:
        """Write what was added since the last commit, as batch `seq`."""
        if self.records:
            db = self._conn()
            rows, self._rows = self._rows, []
            per = _ROWS_PER_INSERT
            whole = len(rows) - len(rows) % per
            # Many rows per statement: one call into SQLite instead of one per row.
            for i in range(0, whole, per):
                db.execute(_INSERT_MANY, [v for row in rows[i : i + per] for v in row])
            if whole < len(rows):
                db.executemany(_INSERT, rows[whole:])
            self._rollup.write(db)
            db.execute("INSERT OR REPLACE INTO writers VALUES (?, ?)", (self.writer, seq))
            db.commit()
        texts, self._texts = self._texts, {}
        for (function, stream), parts in texts.items():
            self._append(stream_path(self.state_dir, function, stream), "".join(parts))

    def discard(self) -> None:
        """Drop what was added since the last commit (after a failed commit)."""
        self._rows, self._texts = [], {}
        self._rollup = rollup.Rollup()
        if self._db is not None and self._db.in_transaction:
            self._db.rollback()

    def close(self) -> None:
        """Forget this writer's batch number (it is done) and close files and database."""
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        if self._db is not None:
            self._db.execute("DELETE FROM writers WHERE writer = ?", (self.writer,))
            self._db.commit()
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.state_dir)
        return self._db

    def _append(self, path: Path, text: str) -> None:
        fd = self._files.pop(path, -1)  # re-inserted below: the dict keeps use order
        if fd < 0:
            if len(self._files) >= self.OPEN_STREAMS:
                os.close(self._files.pop(next(iter(self._files))))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._files[path] = fd
        os.write(fd, text.encode("utf-8", "replace"))


_ROW = f"({', '.join('?' for _ in COLUMNS)})"
_INSERT = f"INSERT INTO invocations ({', '.join(name for name, _ in COLUMNS)}) VALUES {_ROW}"
_ROWS_PER_INSERT = 999 // len(COLUMNS)  # SQLite's oldest limit on parameters per statement
_INSERT_MANY = _INSERT + f", {_ROW}" * (_ROWS_PER_INSERT - 1)
