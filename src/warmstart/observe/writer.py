"""The records writer: invocation records are written by a process of their own.

Writing a record (a database row, a few log lines) costs ~12 us of CPU. Done by a thread of the
engine's process, that time holds the GIL in pieces, and each hand-off of the GIL between that
thread and the one serving invocations costs the latter a wake-up: measured, a writer thread took
a quarter of `warmstart serve`'s throughput. So the engine only queues records; every `interval`
a thread runs the observers (metrics) over them, marshals them in one batch (~1 us a record) and
pipes the batch to a child process that writes them at the lowest CPU priority.

Nothing is lost. Batches are numbered, the child acknowledges each one once it is committed, and
the engine keeps a batch until then: if the child dies, a new one is started and gets the
unacknowledged batches again (the database keeps the number of the last batch committed, so no
row is written twice). If the engine's process dies, the child reads to the end of its pipe,
writes what it received and exits; it ignores Ctrl-C, which the terminal sends to both.

When a batch cannot be committed (the disk is full, the database unusable) the child keeps it,
says so once, and tries again with backoff; it reads nothing more meanwhile. The engine never
waits for it then: its batches wait in memory, up to MAX_WAITING_BYTES, and past that new
records are dropped and counted (`dropped`, /metrics), and once records can be written again
the count goes to the database for `warmstart stats` to report.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StateDatabaseError
from .record import FUNCTION, STARTED_AT
from .records import RecordStore, dropped_note

__all__ = ["RecordWriter", "main"]

log = logging.getLogger("warmstart")

_HEADER = struct.Struct("<QI")  # batch number, length of the marshalled batch
# The child's replies: kind, batch number, length of the text that follows.
_REPLY = struct.Struct("<cQI")
_ACK = b"A"  # batches up to this number are committed
_FULL = b"F"  # a batch cannot be committed: the disk is full (the text says where)
_FAILED = b"E"  # a batch cannot be committed for another reason (the text says which)
_PIPE_BYTES = 1 << 20  # fewer blocked writes than the default 64 KiB
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named only from Python 3.10 on Linux
RETRY_S = (0.05, 1.0)  # the child's retries of a batch it could not commit: first, longest wait

Frame = tuple[int, bytes, int]  # batch number, header and marshalled batch, records in it


class RecordWriter:
    """Takes records from the engine and has them written, off the invoke path.

    `submit` is a deque append. Past MAX_BACKLOG waiting records (the child cannot keep up),
    submitting threads ship a batch themselves and so wait for the child, unless it cannot
    write (then nothing waits: see the module's docstring). `flush` returns once everything
    submitted before it is on disk, or records cannot be written now (`waiting` says why,
    `pending()` how many); `close` also stops the child.

    Example: w = RecordWriter(Path(".warmstart")); w.submit(result.record); w.flush(); w.close()
    """

    BATCH = 2048  # records per batch at most
    MAX_BACKLOG = 100_000
    # Batches kept while they cannot be written. A record takes ~300-500 bytes marshalled, so
    # this holds ~150,000 of them: 15 s of `warmstart serve` at its top rate, hours at the pace
    # of a person or a test suite, for at most 64 MiB more memory in the engine.
    MAX_WAITING_BYTES = 64 << 20
    RESTARTS = 3  # child deaths in a row (no batch committed in between) before giving up
    ACK_TIMEOUT_S = 60.0
    CLOSE_GRACE_S = 2 * RETRY_S[1]  # at close, for records that cannot be written now

    def __init__(self, state_dir: Path, interval: float = 0.2, records: bool = True) -> None:
        self.state_dir = state_dir
        self.interval = interval
        self.records = records
        # Records (see record.py), or (function, stream, text) to append to a log stream.
        self._items: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()  # guards the child and everything below
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"  # for the child's batch numbers
        self._child: subprocess.Popen[bytes] | None = None
        self._seq = 0
        self._sent: deque[Frame] = deque()  # in the child's pipe or hands, not acknowledged
        self._queued: deque[Frame] = deque()  # not yet (wholly) in the pipe
        self._offset = 0  # bytes of _queued[0] in the pipe
        self._held_bytes = 0  # of the frames in _sent and _queued
        self._held_records = 0
        self._replies = b""
        self._failures = 0
        self.waiting: str | None = None  # why records cannot be written now (None: they can)
        self._waiting_since = 0.0
        self.dropped = 0  # records dropped since the start
        # Dropped records not yet reported in the database: function -> [records, first, last].
        self._lost: dict[str, list[float]] = {}
        self._lost_reason = ""
        self._lost_told = 0  # of those, how many a line on stderr has reported
        self._wake = threading.Event()
        self._stop = False
        # Called with each invocation record as it is shipped (metrics), in the shipping thread.
        self.observers: list[Callable[[tuple[Any, ...]], None]] = []
        self._thread = threading.Thread(target=self._run, name="warmstart-records", daemon=True)
        self._thread.start()

    def submit(self, item: tuple[Any, ...]) -> None:
        self._items.append(item)
        if len(self._items) > self.MAX_BACKLOG and self.waiting is None:
            with self._lock:  # the writer cannot keep up: wait for it
                self._ship()
                self._drain(time.monotonic() + self.ACK_TIMEOUT_S, acked=False)

    def log(self, function: str, stream: str, text: str) -> None:
        """Append text that belongs to no invocation (a provisioned environment's INIT)."""
        self._items.append((function, stream, text))

    def pending(self) -> int:
        """Records submitted and not written yet."""
        return len(self._items) + self._held_records

    def flush(self) -> None:
        """Have everything submitted so far written (from any thread); returns when it is, or
        when records cannot be written now (`waiting`)."""
        with self._lock:
            while self._items:
                self._ship()
            self._drain(time.monotonic() + self.ACK_TIMEOUT_S, acked=True)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(60)
        with self._lock:
            while self._items:
                self._ship()
            deadline = time.monotonic() + self.ACK_TIMEOUT_S
            self._drain(deadline, acked=True, grace_s=self.CLOSE_GRACE_S)
            child = self._child
            self._child = None
            unwritten = [*self._sent, *self._queued]
            if unwritten:
                self._drop_frames(unwritten, self.waiting or "the records writer did not answer")
                self._sent.clear()
                self._queued.clear()
            if child is not None:
                self._stop_child(child, gently=not unwritten)
            self._report_lost()

    # -- the engine's side -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            try:
                with self._lock:
                    while self._items:
                        self._ship()
                    self._pump()
                    self._read_replies()
            except Exception:  # the engine must go on; the records wait for the next round
                log.exception("could not hand invocation records to their writer")

    def _ship(self) -> None:
        """Frame up to BATCH waiting items for the child and send what its pipe takes (the lock
        is held); while records cannot be written, past MAX_WAITING_BYTES, drop them."""
        items = self._items
        batch = []
        records = 0
        observers = self.observers
        for _ in range(self.BATCH):
            try:
                item = items.popleft()
            except IndexError:
                break
            batch.append(item)
            if len(item) != 3:
                records += 1
                for observe in observers:
                    try:
                        observe(item)
                    except Exception:  # a broken observer must not lose records
                        log.exception("a records observer failed")
        if self.waiting is not None and self._held_bytes >= self.MAX_WAITING_BYTES:
            if not self._lost:
                log.warning(
                    "more than %s of invocation records wait to be written: newer ones are "
                    "dropped (and counted) until they can be",
                    _mib(self.MAX_WAITING_BYTES),
                )
            self._drop(batch, self.waiting)
            return
        self._frame(batch, records)
        self._pump()
        self._read_replies()

    def _frame(self, batch: list[tuple[Any, ...]], records: int) -> None:
        blob = marshal.dumps(batch)
        self._seq += 1
        frame = _HEADER.pack(self._seq, len(blob)) + blob
        self._queued.append((self._seq, frame, records))
        self._held_bytes += len(frame)
        self._held_records += records

    def _pump(self) -> None:
        """Write queued frames into the child's pipe as far as it takes them, never waiting."""
        queued = self._queued
        while queued:
            child = self._child or self._start()
            if child is None:
                return
            assert child.stdin is not None
            frame = queued[0][1]
            try:
                self._offset += os.write(child.stdin.fileno(), memoryview(frame)[self._offset :])
            except BlockingIOError:
                return
            except OSError:  # the child is gone: a new one gets every unacknowledged batch
                self._restart()
                continue
            if self._offset == len(frame):
                self._sent.append(queued.popleft())
                self._offset = 0

    def _drain(self, deadline: float, acked: bool, grace_s: float | None = None) -> None:
        """Wait until every frame is in the pipe (and, if `acked`, committed). When records
        cannot be written, return at once, or wait `grace_s` more for them to be."""
        while self._queued or (acked and self._sent):
            if self.waiting is not None:
                if grace_s is None:
                    return
                deadline = min(deadline, time.monotonic() + grace_s)
                grace_s = float("inf")  # from the first time only
            left = deadline - time.monotonic()
            if left <= 0:
                if self.waiting is None:
                    log.error("the records writer has not written %d batches", len(self._sent))
                return
            self._pump()
            child = self._child
            if child is None:
                return  # could not be started (logged)
            assert child.stdin is not None and child.stdout is not None
            poller = select.poll()
            poller.register(child.stdout.fileno(), select.POLLIN)
            if self._queued:
                poller.register(child.stdin.fileno(), select.POLLOUT)
            poller.poll(min(left, 1.0) * 1000)
            self._read_replies()

    def _start(self) -> subprocess.Popen[bytes] | None:
        # The package's parent directory: the child imports warmstart.observe from there.
        root = str(Path(__file__).resolve().parents[2])
        code = (
            f"import sys; sys.path.insert(0, {root!r}); "
            "from warmstart.observe.writer import main; main()"
        )
        records = "1" if self.records else "0"
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code, str(self.state_dir), records, self._name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                close_fds=True,
            )
        except OSError as e:
            log.error("cannot start the records writer: %s", e)
            self._drop_frames([*self._sent, *self._queued], "no records writer")
            self._sent.clear()
            self._queued.clear()
            self._offset = 0
            self._report_lost()
            return None
        assert child.stdin is not None and child.stdout is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(child.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        os.set_blocking(child.stdin.fileno(), False)
        os.set_blocking(child.stdout.fileno(), False)
        self._child = child
        self._replies = b""
        return child

    def _restart(self) -> None:
        """The child is gone: the next one gets every unacknowledged frame again."""
        old = self._child
        self._child = None
        if old is not None:
            self._stop_child(old, gently=False)
        self._queued.extendleft(reversed(self._sent))
        self._sent.clear()
        self._offset = 0
        self._failures += 1
        if self._failures > self.RESTARTS:
            frames = list(self._queued)
            self._queued.clear()
            self._failures = 0
            self._drop_frames(frames, "the records writer kept failing")
            self._report_lost()
            return
        log.warning("the records writer stopped; starting it again")

    def _read_replies(self) -> None:
        """Take what the child said, without waiting."""
        child = self._child
        if child is None:
            return
        assert child.stdout is not None
        try:
            data = os.read(child.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            self._restart()
            return
        buf = self._replies + data
        at = 0
        while len(buf) - at >= _REPLY.size:
            kind, seq, n = _REPLY.unpack_from(buf, at)
            end = at + _REPLY.size + n
            if len(buf) < end:
                break
            if kind == _ACK:
                self._acknowledged(seq)
            else:
                self._cannot_write(kind == _FULL, buf[at + _REPLY.size : end].decode())
            at = end
        self._replies = buf[at:]

    def _acknowledged(self, last: int) -> None:
        sent = self._sent
        while sent and sent[0][0] <= last:
            _, frame, records = sent.popleft()
            self._held_bytes -= len(frame)
            self._held_records -= records
        self._failures = 0
        if self.waiting is not None:
            self.waiting = None
            log.info(
                "invocation records are written again (they waited %.1f s)",
                time.monotonic() - self._waiting_since,
            )
        if self._lost:  # now the database can say so too
            self._report_lost()
            notes = [
                dropped_note(fn, int(n), first, last_at, self._lost_reason)
                for fn, (n, first, last_at) in self._lost.items()
            ]
            self._lost.clear()
            self._lost_told = 0
            self._frame(notes, 0)

    def _cannot_write(self, full: bool, text: str) -> None:
        if self.waiting is None:
            self.waiting = "disk full" if full else "write error"
            self._waiting_since = time.monotonic()
            log.warning(
                "invocation records cannot be written now (%s); they wait in memory (up to "
                "%s) and are written once they can be",
                text,
                _mib(self.MAX_WAITING_BYTES),
            )

    def _drop(self, batch: list[tuple[Any, ...]], reason: str) -> None:
        """Count records that will not be written, per function, with their time span."""
        lost = self._lost
        self._lost_reason = reason
        for item in batch:
            if len(item) <= STARTED_AT:  # log text without an invocation, or a dropped_note
                continue
            self.dropped += 1
            function, started = item[FUNCTION], item[STARTED_AT]
            tally = lost.get(function)
            if tally is None:
                lost[function] = [1, started, started]
            else:
                tally[0] += 1
                tally[1] = min(tally[1], started)
                tally[2] = max(tally[2], started)

    def _drop_frames(self, frames: list[Frame], reason: str) -> None:
        for _, frame, records in frames:
            self._held_bytes -= len(frame)
            self._held_records -= records
            self._drop(marshal.loads(frame[_HEADER.size :]), reason)

    def _report_lost(self) -> None:
        """One line for the records dropped since the last one (if any)."""
        tallies = self._lost.values()
        total = int(sum(t[0] for t in tallies))
        n = total - self._lost_told
        self._lost_told = total
        if n:
            first = time.strftime("%H:%M:%S", time.localtime(min(t[1] for t in tallies)))
            last = time.strftime("%H:%M:%S", time.localtime(max(t[2] for t in tallies)))
            log.warning(
                "%d invocation record(s) (started from %s to %s) could not be written (%s) and "
                "are lost",
                n,
                first,
                last,
                self._lost_reason,
            )

    def _stop_child(self, child: subprocess.Popen[bytes], gently: bool) -> None:
        """End the child: gently, it writes what it has and exits; else it is killed."""
        if gently:
            assert child.stdin is not None
            with contextlib.suppress(OSError):
                child.stdin.close()  # the child commits what it has and exits
            try:
                child.wait(self.ACK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("the records writer did not exit; stopping it")
        with contextlib.suppress(OSError):
            child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.3g} MiB"


# -- the child's side ------------------------------------------------------------------------


class _Child:
    """The writer process's side: its store, the engine's pipe, the last batch committed."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.engine = os.getppid()
        self.hangup = select.poll()
        self.hangup.register(0, 0)  # POLLHUP alone: the engine closed its end
        self.done = 0  # the last batch committed

    def reply(self, kind: bytes, seq: int, text: str = "") -> None:
        data = text.encode()
        with contextlib.suppress(OSError):  # the engine is gone: write what it sent, then end
            os.write(1, _REPLY.pack(kind, seq, len(data)) + data)

    def persist(self, action: Callable[[], Any], need: int) -> bool:
        """Do `action` until it succeeds (True), telling the engine once if it fails; False if
        the engine goes away meanwhile. `need`: bytes it may write (when the disk is full, no
        attempt is made until there is that much room)."""
        delay, longest = RETRY_S
        told = False
        while True:
            try:
                action()
                return True
            except (StateDatabaseError, OSError) as e:
                if isinstance(e, StateDatabaseError):
                    full, text = e.full, str(e)
                else:
                    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
                    text = f"{e.filename}: {e.strerror}" if e.filename else str(e)
                if not told:
                    self.reply(_FULL if full else _FAILED, self.done, text)
                    told = True
            while True:
                if self.hangup.poll(delay * 1000):
                    if os.getppid() != self.engine:  # it died; it cannot say so any more
                        sys.stderr.write(
                            f"warmstart: invocation records the engine sent are lost: {text}\n"
                        )
                    return False
                delay = min(delay * 2, longest)
                if not full or self.room() >= need:
                    break

    def room(self) -> int:
        with contextlib.suppress(OSError):
            st = os.statvfs(self.store.state_dir)
            return st.f_bavail * st.f_frsize
        return 1 << 62  # the state folder may not exist yet: try


def main() -> None:
    """The writer process: batches from stdin, written, acknowledged on stdout.

    Example: python -c "from warmstart.observe.writer import main; main()" STATE_DIR 1 NAME
    """
    state_dir, records, name = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the engine decides when this ends: end of the pipe
    with contextlib.suppress(OSError, AttributeError):
        # A core only when nothing else wants one: with every core busy (a caller polling for
        # results, its environment working), any other priority takes time slices from them and
        # shows up as milliseconds in their tail latency. The records wait in the pipe instead,
        # and past RecordWriter.MAX_BACKLOG the engine waits for them, freeing a core.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    store = RecordStore(Path(state_dir), records, name)
    child = _Child(store)

    def read_done() -> None:
        child.done = store.committed()

    if not child.persist(read_done, 0):
        return
    poller = select.poll()
    poller.register(0, select.POLLIN)
    buf = bytearray()
    eof = False
    while not eof:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) < (16 << 20) and poller.poll(0):  # what else is there: one commit for all
            chunk = os.read(0, 1 << 20)
            if not chunk:
                eof = True
                break
            buf += chunk
        last = 0
        view = memoryview(buf)
        at = 0
        while len(buf) - at >= _HEADER.size:
            seq, n = _HEADER.unpack_from(buf, at)
            if len(buf) - at - _HEADER.size < n:
                break
            start = at + _HEADER.size
            if seq > child.done:
                store.add(marshal.loads(view[start : start + n]))
            last = seq
            at = start + n
        view.release()
        if last:
            if not child.persist(lambda: store.commit(last), at):  # noqa: B023 (called here)
                return
            child.done = max(child.done, last)
            child.reply(_ACK, last)
        del buf[:at]
    store.close()
