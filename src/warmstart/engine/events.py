"""Asynchronous (Event) invocations: persisted, run, retried, and kept when they fail.

An event is written to the `events` table of the records database before its caller hears
"accepted" (HTTP 202); a worker runs due events, retries function errors as Lambda does (after
about 1 then 2 minutes, up to MaximumRetryAttempts, times `delay_scale` so local runs do not
wait minutes), retries throttles with backoff until MaximumEventAgeInSeconds, and keeps what
finally failed for `warmstart events --failed` to show and redrive. An event accepted before a
crash runs when the next worker starts (at least once, as on Lambda).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RequestTooLargeError, ResourceNotFoundError, TooManyRequestsError
from ..observe.records import connect, database_errors, database_exists, opened

if TYPE_CHECKING:
    from .service import Service

__all__ = [
    "ASYNC_PAYLOAD_LIMIT",
    "Event",
    "EventQueue",
    "list_events",
    "pending_events",
    "redrive",
]

log = logging.getLogger("warmstart")

ASYNC_PAYLOAD_LIMIT = 1024 * 1024
RETRY_DELAYS_S = (60.0, 120.0)  # Lambda: about a minute before the first retry, two before the next
THROTTLE_BACKOFF_S = (1.0, 300.0)  # throttled events: from 1 s, doubling, up to 5 minutes
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        function TEXT NOT NULL,
        qualifier TEXT,
        payload BLOB NOT NULL,
        client_context BLOB,
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        throttles INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        status TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        claimed_by TEXT,
        updated_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS events_due ON events (status, next_attempt_at)",
)
QUEUED, RUNNING, FAILED = "queued", "running", "failed"


@dataclass(frozen=True)
class Event:
    id: str
    function: str
    qualifier: str | None
    received_at: float
    attempts: int
    status: str
    error_type: str | None
    error_message: str | None
    next_attempt_at: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _db(state_dir: Path) -> sqlite3.Connection:
    """The database with the events table; StateDatabaseError if it cannot be used."""
    db = connect(state_dir)
    try:
        with database_errors(state_dir):
            for stmt in SCHEMA:
                db.execute(stmt)
            db.commit()
    except BaseException:
        db.close()
        raise
    return db


@contextlib.contextmanager
def _opened(state_dir: Path) -> Iterator[sqlite3.Connection]:
    with opened(state_dir) as db:
        for stmt in SCHEMA:
            db.execute(stmt)
        db.commit()
        yield db


_COLUMNS = (
    "id, function, qualifier, received_at, attempts, status, error_type, error_message, "
    "next_attempt_at"
)


def list_events(
    state_dir: Path, function: str | None = None, status: str | None = FAILED
) -> list[Event]:
    """Events in the database, oldest first (failed ones by default; status None: all).

    Example: [e.id for e in list_events(Path(".warmstart"), "Hello")]
    """
    with _opened(state_dir) as db:
        where, args = [], []
        if function:
            where.append("function = ?")
            args.append(function)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [Event(*row) for row in db.execute(sql + " ORDER BY received_at", args)]


def pending_events(state_dir: Path) -> int:
    """How many events wait to run (queued, or left running by a process that is gone)."""
    if not database_exists(state_dir):
        return 0
    # Read only: every engine asks this when it starts, and it must start with a full disk.
    with opened(state_dir) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
            return 0
        row = db.execute(
            "SELECT count(*) FROM events WHERE status IN (?, ?)", (QUEUED, RUNNING)
        ).fetchone()
        return int(row[0])


def redrive(state_dir: Path, ids: list[str] | None = None, function: str | None = None) -> int:
    """Queue failed events again (all of them, or those ids); returns how many.

    A running `warmstart serve` on the same state folder picks them up within a moment.
    """
    with _opened(state_dir) as db:
        sql = (
            "UPDATE events SET status = ?, attempts = 0, throttles = 0, next_attempt_at = ?, "
            "received_at = ?, updated_at = ? WHERE status = ?"
        )
        now = time.time()
        args: list[Any] = [QUEUED, now, now, now, FAILED]
        if ids is not None:
            sql += f" AND id IN ({', '.join('?' for _ in ids)})"
            args += ids
        if function:
            sql += " AND function = ?"
            args.append(function)
        with db:
            return db.execute(sql, args).rowcount


class EventQueue:
    """Accepts asynchronous invocations and runs them in the background.

    Example:
        q = EventQueue(service, Path(".warmstart")); q.start()
        request_id = q.submit("Hello", b'{"k": "v"}')
    """

    def __init__(
        self,
        service: Service,
        state_dir: Path,
        delay_scale: float = 0.01,
        concurrency: int = 64,
        poll_s: float = 0.05,
    ) -> None:
        self.service = service
        self.state_dir = state_dir
        self.delay_scale = delay_scale
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.token = f"{os.getpid()}:{id(self):x}"  # who claimed a running event
        self._db = _db(state_dir)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._drain_s = 10.0
        self._running: set[asyncio.Task[None]] = set()

    # -- accepting -------------------------------------------------------------------------

    def submit(
        self,
        function: str,
        payload: bytes,
        qualifier: str | None = None,
        client_context: bytes | None = None,
    ) -> str:
        """Persist an event and return its request id (the id the function will see)."""
        from .service import new_request_id

        if len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeError(
                f"Request must be smaller than {ASYNC_PAYLOAD_LIMIT} bytes for the Invoke "
                "operation when the invocation type is Event"
            )
        version, qualifier = self.service.resolve(function, qualifier)  # unknown: not accepted
        request_id = new_request_id()
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO events (id, function, qualifier, payload, client_context, received_at,"
                " next_attempt_at, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    version.function.name,
                    qualifier,
                    payload,
                    client_context,
                    now,
                    now,
                    QUEUED,
                    now,
                ),
            )
        self._nudge()
        return request_id

    def _nudge(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(wake.set)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run due events from now on, in a thread of its own."""
        if self._thread is None:
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._thread_main, args=(ready,), name="warmstart-events", daemon=True
            )
            self._thread.start()
            ready.wait(10)

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    def _recover(self) -> None:
        """Events left running by a process that is gone run again."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, claimed_by FROM events WHERE status = ?", (RUNNING,)
            ).fetchall()
            orphans = [i for i, owner in rows if not _alive(owner)]
            if orphans:
                with self._db:
                    self._db.executemany(
                        "UPDATE events SET status = ?, claimed_by = NULL WHERE id = ?",
                        [(QUEUED, i) for i in orphans],
                    )
        if orphans:
            log.info("%d asynchronous event(s) interrupted earlier will run again", len(orphans))

    def _claim(self, limit: int) -> list[tuple[Any, ...]]:
        now = time.time()
        with self._lock:
            rows = self._db.execute(
                "SELECT id, function, qualifier, payload, client_context, received_at, attempts, "
                "throttles FROM events WHERE status = ? AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at LIMIT ?",
                (QUEUED, now, limit),
            ).fetchall()
            claimed = []
            with self._db:
                for row in rows:
                    cur = self._db.execute(
                        "UPDATE events SET status = ?, claimed_by = ?, updated_at = ? "
                        "WHERE id = ? AND status = ?",
                        (RUNNING, self.token, now, row[0], QUEUED),
                    )
                    if cur.rowcount:
                        claimed.append(row)
            return claimed

    def _next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT min(next_attempt_at) FROM events WHERE status = ?", (QUEUED,)
            ).fetchone()
        return row[0] if row else None

    async def _main(self) -> None:
        assert self._wake is not None
        self._recover()
        while not self._stopping:
            free = self.concurrency - len(self._running)
            if free > 0:
                for row in self._claim(free):
                    task = asyncio.ensure_future(self._run(*row))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            due = self._next_due()
            wait = self.poll_s if due is None else min(max(due - time.time(), 0.0), self.poll_s)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=self._drain_s)
            for task in late:  # they run again next time (their events stay claimed by us)
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(
        self,
        event_id: str,
        function: str,
        qualifier: str | None,
        payload: bytes,
        client_context: bytes | None,
        received_at: float,
        attempts: int,
        throttles: int,
    ) -> None:
        try:
            spec = self.service.function(function).latest.spec
        except ResourceNotFoundError as e:
            self._finish(event_id, FAILED, "ResourceNotFoundException", str(e))
            return
        if time.time() - received_at > spec.max_event_age_s:
            self._finish(
                event_id,
                FAILED,
                "EventAgeExceeded",
                f"older than MaximumEventAgeInSeconds ({spec.max_event_age_s})",
            )
            return
        try:
            res = await self.service.ainvoke(
                function, payload, qualifier, client_context=client_context, request_id=event_id
            )
        except TooManyRequestsError as e:
            backoff = min(THROTTLE_BACKOFF_S[0] * 2**throttles, THROTTLE_BACKOFF_S[1])
            self._retry(
                event_id, attempts, throttles + 1, backoff, "TooManyRequestsException", e.reason
            )
            return
        except Exception as e:  # an engine failure: retried like a throttle
            backoff = min(THROTTLE_BACKOFF_S[0] * 2**throttles, THROTTLE_BACKOFF_S[1])
            self._retry(event_id, attempts, throttles + 1, backoff, type(e).__name__, str(e))
            return
        if not res.function_error:
            self._finish(event_id, None)
            return
        error = res.payload if isinstance(res.payload, dict) else {}
        message = str(error.get("errorMessage", ""))
        if attempts >= spec.max_retry_attempts:
            log.warning(
                "asynchronous event %s of %s failed after %d attempt(s): %s",
                event_id,
                function,
                attempts + 1,
                res.error_type,
            )
            self._finish(event_id, FAILED, res.error_type, message)
        else:
            delay = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S) - 1)]
            self._retry(event_id, attempts + 1, throttles, delay, res.error_type, message)

    def _retry(
        self,
        event_id: str,
        attempts: int,
        throttles: int,
        delay_s: float,
        error_type: str | None,
        message: str | None,
    ) -> None:
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "UPDATE events SET status = ?, attempts = ?, throttles = ?, next_attempt_at = ?, "
                "error_type = ?, error_message = ?, claimed_by = NULL, updated_at = ? WHERE id = ?",
                (
                    QUEUED,
                    attempts,
                    throttles,
                    now + delay_s * self.delay_scale,
                    error_type,
                    message,
                    now,
                    event_id,
                ),
            )

    def _finish(
        self,
        event_id: str,
        status: str | None,
        error_type: str | None = None,
        message: str | None = None,
    ) -> None:
        with self._lock, self._db:
            if status is None:  # it ran: its record is in the invocations table
                self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            else:
                self._db.execute(
                    "UPDATE events SET status = ?, error_type = ?, error_message = ?, "
                    "claimed_by = NULL, updated_at = ? WHERE id = ?",
                    (status, error_type, message, time.time(), event_id),
                )

    # -- state -----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many events are queued, running and failed."""
        with self._lock:
            rows = self._db.execute("SELECT status, count(*) FROM events GROUP BY status")
            return {QUEUED: 0, RUNNING: 0, FAILED: 0, **dict(rows.fetchall())}

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking events; wait up to `timeout` for running ones (the rest run next time)."""
        self._drain_s = timeout
        self._stopping = True
        self._nudge()
        if self._thread is not None:
            self._thread.join(timeout + 5)
        with self._lock:
            self._db.close()


def _alive(owner: str | None) -> bool:
    if not owner:
        return False
    try:
        pid = int(owner.split(":")[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return False  # this process starts anew: nothing of its own is running yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
