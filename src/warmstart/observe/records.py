"""Invocation records in SQLite, and the batching writer that keeps them off the invoke path.

One row per invocation attempt (throttles included), in `<state dir>/warmstart.db` (WAL mode, so
readers such as `warmstart stats` never block a running engine). The writer also appends each
invocation's log text to its environment's log stream file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .logs import render_log, stream_path
from .record import FUNCTION, STREAM, row_of

__all__ = ["COLUMNS", "RecordWriter", "connect", "query"]

log = logging.getLogger("warmstart")

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
)
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS invocations ({', '.join(f'{n} {t}' for n, t in COLUMNS)})",
    # One index: each one costs ~1.5 us per inserted row, and per-function queries need it.
    "CREATE INDEX IF NOT EXISTS invocations_function_time ON invocations (function, started_at)",
)


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the records database.

    Example: connect(Path(".warmstart")).execute("SELECT count(*) FROM invocations")
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / DB_NAME, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for stmt in _SCHEMA:
        db.execute(stmt)
    db.commit()
    return db


def query(state_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    db = connect(state_dir)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, params))
    finally:
        db.close()


class RecordWriter:
    """Writes records and log text to disk from a background thread, off the invoke path.

    `submit` is a deque append. The thread runs at SCHED_IDLE: it gets a core only when nothing
    else wants one. On a machine where every core is busy (a caller polling for results, its
    environment working), any other priority takes time slices from them and shows up as
    milliseconds in the tail latency; at SCHED_IDLE the records wait in memory instead. Past
    MAX_BACKLOG waiting records, submitting threads write one record each to keep memory bounded.
    Rows go in one transaction per batch; log text is appended to each stream's file at each
    commit. `flush` and `close` write everything submitted so far.
    """

    COMMIT_EVERY = 512
    HELP_BATCH = 64  # what a submitting thread writes itself past MAX_BACKLOG
    OPEN_STREAMS = 256  # log files kept open
    MAX_BACKLOG = 100_000

    def __init__(self, state_dir: Path, interval: float = 0.2, records: bool = True) -> None:
        self.state_dir = state_dir
        self.interval = interval
        self.records = records
        # Records (see above), or (function, stream, text) to append to a log stream.
        self._items: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()  # guards everything below
        self._db: sqlite3.Connection | None = None
        self._rows = 0  # rows in the open transaction
        self._texts: dict[tuple[str, str], list[str]] = {}  # log text not yet appended
        self._files: dict[Path, int] = {}
        self._wake = threading.Event()
        self._stop = False
        # Called with each invocation record as it is written (metrics), in this thread.
        self.observers: list[Callable[[tuple[Any, ...]], None]] = []
        self._thread = threading.Thread(target=self._run, name="warmstart-records", daemon=True)
        self._thread.start()

    def submit(self, item: tuple[Any, ...]) -> None:
        self._items.append(item)
        if len(self._items) > self.MAX_BACKLOG:
            self.help()

    def log(self, function: str, stream: str, text: str) -> None:
        """Append text that belongs to no invocation (a provisioned environment's INIT)."""
        self._items.append((function, stream, text))

    def help(self) -> bool:
        """Write a batch of pending records now if nobody else is; True if it did something."""
        if not self._items or not self._lock.acquire(blocking=False):
            return False
        try:
            self._batch(self.HELP_BATCH)
            self._commit()
            return True
        finally:
            self._lock.release()

    def flush(self) -> None:
        """Write everything submitted so far (from any thread); returns when it is on disk."""
        with self._lock:
            self._drain()

    def _batch(self, limit: int) -> None:
        """Up to `limit` items into the open batch (the lock is held)."""
        items = self._items
        rows = []
        observers = self.observers
        for _ in range(limit):
            try:
                item = items.popleft()
            except IndexError:
                break
            if len(item) == 3:
                function, stream, text = item
            else:
                rows.append(row_of(item))
                function, stream = item[FUNCTION], item[STREAM]
                text = render_log(item) if stream else ""
                for observe in observers:
                    try:
                        observe(item)
                    except Exception:  # a broken observer must not lose records
                        log.exception("a records observer failed")
            if stream:
                self._texts.setdefault((function, stream), []).append(text)
        if rows and self.records:
            if self._db is None:
                self._db = connect(self.state_dir)
            self._db.executemany(_INSERT, rows)  # one call for the batch: C loops over the rows
            self._rows += len(rows)

    def _commit(self) -> None:
        if self._db is not None and self._rows:
            self._db.commit()
        self._rows = 0
        texts, self._texts = self._texts, {}
        for (function, stream), parts in texts.items():
            self._append(stream_path(self.state_dir, function, stream), "".join(parts))

    def _drain(self) -> None:
        while self._items:
            self._batch(self.COMMIT_EVERY)
            self._commit()

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # this thread only
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        while not self._stop:
            self._wake.wait(self.interval)
            try:
                with self._lock:
                    self._drain()
            except Exception:  # a full disk must not take the engine down with it
                log.exception("could not write invocation records")
        with self._lock:
            self._drain()
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            if self._db is not None:
                self._db.close()
                self._db = None

    def _append(self, path: Path, text: str) -> None:
        fd = self._files.pop(path, -1)  # re-inserted below: the dict keeps use order
        if fd < 0:
            if len(self._files) >= self.OPEN_STREAMS:
                os.close(self._files.pop(next(iter(self._files))))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._files[path] = fd
        os.write(fd, text.encode("utf-8", "replace"))

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(60)


_INSERT = (
    f"INSERT INTO invocations ({', '.join(name for name, _ in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)
