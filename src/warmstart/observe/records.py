"""Invocation records in SQLite, and the store that writes them with their log text.

One row per invocation attempt (throttles included), in `<state dir>/warmstart.db` (WAL mode, so
readers such as `warmstart stats` never block a running engine). The store also appends each
invocation's log text to its environment's log stream file. It runs in the records writer's
process (see writer.py).

`connect` is the one way in: a database that cannot be used (corrupt, not a database, a folder,
not readable, its disk full) is a StateDatabaseError naming the file and what to do, from every
command, not a traceback from SQLite.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import StateDatabaseError
from . import rollup
from .logs import render_log, stream_path
from .record import FUNCTION, STREAM, row_of

__all__ = [
    "COLUMNS",
    "RecordStore",
    "connect",
    "database_errors",
    "database_exists",
    "dropped_note",
    "opened",
    "query",
]

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
    # The log files a writer is appending a batch's text to, and their lengths before: if it
    # dies before the batch is committed, the next one cuts them back, so the text sent again
    # is not there twice.
    "CREATE TABLE IF NOT EXISTS appending (writer TEXT NOT NULL, path TEXT NOT NULL, "
    "size INTEGER NOT NULL)",
    # Records a running engine could not keep until they could be written (see writer.py).
    "CREATE TABLE IF NOT EXISTS dropped (function TEXT NOT NULL, records INTEGER NOT NULL, "
    "first_at REAL, last_at REAL, reason TEXT)",
    rollup.SCHEMA,
)
_NOTE_FIELDS = 6  # of a dropped_note (a record has 29, log text 3)

_MOVE = "move it away (with its -wal and -shm files, if any): warmstart starts a new one"
_ACCESS = "let this user read and write it and its folder, or move it away"
_NOT_A_FOLDER = "give another --state-dir, or move it away"


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the records database; StateDatabaseError if it cannot be used.

    Example: connect(Path(".warmstart")).execute("SELECT count(*) FROM invocations")
    """
    path = state_dir / DB_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise _database_error(path, e) from None
    try:
        with database_errors(state_dir):
            _prepare(db)
    except BaseException:
        db.close()
        raise
    return db


def database_exists(state_dir: Path) -> bool:
    """Whether there is a database to read (StateDatabaseError if the folder is not one).

    Example: stats(state) if database_exists(state) else None
    """
    if state_dir.exists() and not state_dir.is_dir():
        raise StateDatabaseError(state_dir, "it is not a folder", _NOT_A_FOLDER)
    return (state_dir / DB_NAME).exists()


def _prepare(db: sqlite3.Connection) -> None:
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


@contextlib.contextmanager
def database_errors(state_dir: Path) -> Iterator[None]:
    """SQLite's errors about the database file, raised in the block, become StateDatabaseErrors.

    Example: with database_errors(state): db.execute("SELECT count(*) FROM invocations")
    """
    try:
        yield
    except sqlite3.Error as e:
        # Misuse (a closed connection, a constraint) is warmstart's bug, not the file's.
        if isinstance(e, (sqlite3.ProgrammingError, sqlite3.IntegrityError)):
            raise
        raise _database_error(state_dir / DB_NAME, e) from None


@contextlib.contextmanager
def opened(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The database, closed after the block; errors in the block are StateDatabaseErrors.

    Example: with opened(Path(".warmstart")) as db: db.execute("SELECT 1")
    """
    db = connect(state_dir)
    try:
        with database_errors(state_dir):
            yield db
    finally:
        db.close()


def _database_error(path: Path, e: BaseException) -> StateDatabaseError:
    """What an error opening or using the database at `path` means, and what to do about it."""
    text = str(e)
    name = getattr(e, "sqlite_errorname", "")  # Python 3.11+; the message before

    def said(*words: str) -> bool:
        return any(name.startswith(w) or w in text for w in words)

    full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
    if said("SQLITE_IOERR", "disk I/O error"):  # sometimes what a full disk gives
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(path.parent).free == 0
    if full or said("SQLITE_FULL", "is full"):
        return StateDatabaseError(path, "no space left on the device", "free some space", True)
    if isinstance(e, OSError):  # making the state folder
        if e.errno in (errno.EEXIST, errno.ENOTDIR):
            return StateDatabaseError(path.parent, "it is not a folder", _NOT_A_FOLDER)
        return StateDatabaseError(path, f"cannot create its folder ({e.strerror})", _ACCESS)
    if said("SQLITE_CORRUPT", "malformed"):
        return StateDatabaseError(path, f"it is corrupt ({text})", _MOVE)
    if said("SQLITE_NOTADB", "not a database"):
        return StateDatabaseError(path, "it is not a SQLite database", _MOVE)
    if said("SQLITE_BUSY", "SQLITE_LOCKED", "is locked"):
        return StateDatabaseError(path, "another process keeps it locked", "try again later")
    if said("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH", "readonly"):
        return StateDatabaseError(path, "this user may not write it", _ACCESS)
    if path.is_dir():
        return StateDatabaseError(path, "it is a folder, not a database", _MOVE)
    if said("SQLITE_CANTOPEN", "unable to open"):
        usable = os.access(path.parent, os.W_OK | os.X_OK) and (
            not path.exists() or os.access(path, os.R_OK | os.W_OK)
        )
        if not usable:
            return StateDatabaseError(path, "permission denied", _ACCESS)
    return StateDatabaseError(path, f"it cannot be used ({text})", _MOVE)


def query(state_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Rows of one query; StateDatabaseError if the database cannot be used.

    Example: query(Path(".warmstart"), "SELECT count(*) FROM invocations")[0][0]
    """
    with opened(state_dir) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, params))


def dropped_note(
    function: str, records: int, first: float, last: float, reason: str
) -> tuple[Any, ...]:
    """An item for the store: `records` of `function`'s records, started from `first` to `last`
    (epoch s), could not be written (`reason`). `warmstart stats` shows it.

    Example: store.add([dropped_note("Hello", 120, t1, t2, "disk full")])
    """
    return ("dropped", function, records, first, last, reason)


class RecordStore:
    """Writes batches of records (and log text) to the database and the log stream files.

    A batch's log text is appended first, then its rows are committed in one transaction with
    the batch's number. If anything fails (a full disk) the text is cut off again and the rows
    rolled back, and the batch is kept: `commit` again writes it, once. Errors: OSError (a log
    file), StateDatabaseError (the database).

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
        self._notes: list[tuple[Any, ...]] = []
        self._texts: dict[tuple[str, str], list[str]] = {}  # log text not yet appended
        self._files: dict[Path, int] = {}

    def committed(self) -> int:
        """The number of the last batch this writer committed (0: none). Text a writer of the
        same name appended to log files without committing it (it died) is cut off again."""
        if not self.records:
            return 0
        db = self._conn()
        try:
            with database_errors(self.state_dir):
                row = db.execute(
                    "SELECT seq FROM writers WHERE writer = ?", (self.writer,)
                ).fetchone()
                for path, size in db.execute(
                    "SELECT path, size FROM appending WHERE writer = ?", (self.writer,)
                ):
                    with contextlib.suppress(FileNotFoundError):
                        os.truncate(self.state_dir / path, size)
        except BaseException:
            self._close_db()
            raise
        return int(row[0]) if row else 0

    def add(self, items: Iterable[tuple[Any, ...]]) -> None:
        """Records (see record.py), (function, stream, text) to append to a log stream, or
        dropped_note()s."""
        rows, texts = self._rows, self._texts
        for item in items:
            if len(item) == 3:
                function, stream, text = item
            elif len(item) == _NOTE_FIELDS:
                self._notes.append(item[1:])
                continue
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
        """Write what was added since the last commit, as batch `seq`. On an error none of it
        is written, and it is kept for the next `commit`."""
        texts = [
            (stream_path(self.state_dir, function, stream), "".join(parts))
            for (function, stream), parts in self._texts.items()
        ]
        sizes: list[tuple[Path, int]] = []
        try:
            for path, _ in texts:
                sizes.append((path, os.fstat(self._open(path)).st_size))
            if self.records and sizes:
                self._begin_appending(sizes)
            for path, text in texts:
                self._append(path, text)
            if self.records:
                self._commit_rows(seq)
        except BaseException:
            for path, size in sizes:
                with contextlib.suppress(OSError):
                    os.truncate(path, size)
            self._close_db()  # the next attempt opens it again: it may have been replaced
            raise
        self._rows, self._notes, self._texts = [], [], {}
        self._rollup = rollup.Rollup()

    def _begin_appending(self, sizes: list[tuple[Path, int]]) -> None:
        db = self._conn()
        with database_errors(self.state_dir):
            db.execute("DELETE FROM appending WHERE writer = ?", (self.writer,))
            db.executemany(
                "INSERT INTO appending VALUES (?, ?, ?)",
                [(self.writer, str(p.relative_to(self.state_dir)), n) for p, n in sizes],
            )
            db.commit()

    def _commit_rows(self, seq: int) -> None:
        db = self._conn()
        with database_errors(self.state_dir):
            rows = self._rows
            per = _ROWS_PER_INSERT
            whole = len(rows) - len(rows) % per
            # Many rows per statement: one call into SQLite instead of one per row.
            for i in range(0, whole, per):
                db.execute(_INSERT_MANY, [v for row in rows[i : i + per] for v in row])
            if whole < len(rows):
                db.executemany(_INSERT, rows[whole:])
            self._rollup.write(db)
            if self._notes:
                db.executemany("INSERT INTO dropped VALUES (?, ?, ?, ?, ?)", self._notes)
            db.execute("DELETE FROM appending WHERE writer = ?", (self.writer,))
            db.execute("INSERT OR REPLACE INTO writers VALUES (?, ?)", (self.writer, seq))
            db.commit()

    def close(self) -> None:
        """Forget this writer's batch number (it is done) and close files and database."""
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        if self._db is not None:
            # Bookkeeping only: a full disk may refuse it, and the next writer has another name.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("DELETE FROM writers WHERE writer = ?", (self.writer,))
                self._db.commit()
            self._close_db()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.state_dir)
        return self._db

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()  # rolls back what was not committed
            self._db = None

    def _open(self, path: Path) -> int:
        fd = self._files.pop(path, -1)  # re-inserted below: the dict keeps use order
        if fd < 0:
            if len(self._files) >= self.OPEN_STREAMS:
                os.close(self._files.pop(next(iter(self._files))))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._files[path] = fd
        return fd

    def _append(self, path: Path, text: str) -> None:
        fd = self._open(path)
        data = memoryview(text.encode("utf-8", "replace"))
        written = 0
        while written < len(data):  # a full disk may take part of it, then fail
            written += os.write(fd, data[written:])


_ROW = f"({', '.join('?' for _ in COLUMNS)})"
_INSERT = f"INSERT INTO invocations ({', '.join(name for name, _ in COLUMNS)}) VALUES {_ROW}"
_ROWS_PER_INSERT = 999 // len(COLUMNS)  # SQLite's oldest limit on parameters per statement
_INSERT_MANY = _INSERT + f", {_ROW}" * (_ROWS_PER_INSERT - 1)
