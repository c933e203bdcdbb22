"""Invocation records in SQLite, and the batching writer that keeps them off the invoke path.

One row per invocation attempt (throttles included), in `<state dir>/warmstart.db` (WAL mode, so
readers such as `warmstart stats` never block a running engine). The writer also appends each
invocation's log text to its environment's log stream file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .logs import stream_path

__all__ = ["COLUMNS", "RecordWriter", "Recordable", "connect", "query"]

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


class Recordable(Protocol):
    """What the writer takes: an invocation outcome that can give its row and its log text."""

    function_name: str
    stream: str | None

    def row(self) -> tuple[Any, ...]: ...

    @property
    def log(self) -> str: ...


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
    """Writes records and log text in batches from one background thread.

    `submit` is a deque append: nothing on the caller's path touches the disk. The thread wakes
    every `interval` seconds. It takes the GIL as few times as it can per batch, because an
    invoking thread that polls for its result holds the GIL nearly all the time, and every
    hand-over costs it a scheduler wake-up: the Python work is done in a few bounded steps, the
    rows go in as multi-row INSERTs (one GIL release each instead of one per row), and each log
    stream gets one write on a file kept open. `close` flushes everything submitted.
    """

    STEP = 256  # items per step of Python work (~0.5 ms holding the GIL)
    BATCH = 8192  # items per transaction
    OPEN_STREAMS = 256  # log files kept open

    def __init__(self, state_dir: Path, interval: float = 0.2, records: bool = True) -> None:
        self.state_dir = state_dir
        self.interval = interval
        self.records = records
        self._items: deque[Recordable | tuple[str, str, str]] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._db: sqlite3.Connection | None = None
        self._files: dict[Path, int] = {}
        self._flush_waiters: deque[threading.Event] = deque()
        self._thread = threading.Thread(target=self._run, name="warmstart-records", daemon=True)
        self._thread.start()

    def submit(self, item: Recordable) -> None:
        self._items.append(item)

    def log(self, function: str, stream: str, text: str) -> None:
        """Append text that belongs to no invocation (a provisioned environment's INIT)."""
        self._items.append((function, stream, text))

    def flush(self) -> None:
        """Write everything submitted so far (from any thread); returns when done."""
        if not self._thread.is_alive():
            return
        done = threading.Event()
        self._flush_waiters.append(done)
        self._items.append(("", "", ""))  # a marker: when the thread reaches it, all before is written
        self._wake.set()
        done.wait(60)

    def _run(self) -> None:
        # Lowest CPU priority for this thread only: on a busy machine, environments and the
        # invoking threads go first; records wait (they are in memory, not lost).
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # a full disk must not take the engine down with it
                log.exception("could not write invocation records")
            if self._stop and not self._items:
                break
        for fd in self._files.values():
            os.close(fd)
        if self._db is not None:
            self._db.close()

    def _drain(self) -> None:
        items = self._items
        while items:
            rows: list[tuple[Any, ...]] = []
            texts: dict[tuple[str, str], list[str]] = {}
            markers = 0
            while items and len(rows) < self.BATCH:
                for _ in range(self.STEP):
                    if not items:
                        break
                    item = items.popleft()
                    if isinstance(item, tuple):
                        function, stream, text = item
                        if not function:
                            markers += 1
                            continue
                    else:
                        rows.append(item.row())
                        function, stream, text = item.function_name, item.stream or "", item.log
                    if stream:
                        texts.setdefault((function, stream), []).append(text)
                time.sleep(0)  # give the GIL back between steps
            if rows and self.records:
                self._insert(rows)
            for (function, stream), parts in texts.items():
                self._append(stream_path(self.state_dir, function, stream), "".join(parts))
            for _ in range(markers):
                with contextlib.suppress(IndexError):
                    self._flush_waiters.popleft().set()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if self._db is None:
            self._db = connect(self.state_dir)
        with self._db:
            i = 0
            while i < len(rows):
                n = _chunk(len(rows) - i)
                flat = [v for row in rows[i:i + n] for v in row]
                self._db.execute(_insert_rows(n), flat)
                i += n

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


def _chunk(n: int) -> int:
    """Rows per INSERT: a power of two up to 512, so at most ten statement shapes are cached."""
    size = 512
    while size > n:
        size //= 2
    return size


_ROW = f"({', '.join('?' for _ in COLUMNS)})"


@functools.lru_cache(maxsize=16)
def _insert_rows(n: int) -> str:
    return (f"INSERT INTO invocations ({', '.join(name for name, _ in COLUMNS)}) VALUES "
            + ", ".join([_ROW] * n))
