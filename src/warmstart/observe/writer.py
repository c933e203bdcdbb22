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
"""

from __future__ import annotations

import contextlib
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
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .records import RecordStore

__all__ = ["RecordWriter", "main"]

log = logging.getLogger("warmstart")

_HEADER = struct.Struct("<QI")  # batch number, length of the marshalled batch
_ACK = struct.Struct("<Q")  # the last batch committed
_PIPE_BYTES = 1 << 20  # fewer blocked writes than the default 64 KiB
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named only from Python 3.10 on Linux


class RecordWriter:
    """Takes records from the engine and has them written, off the invoke path.

    `submit` is a deque append. Past MAX_BACKLOG waiting records (the child cannot keep up),
    submitting threads ship a batch themselves and so wait for the child. `flush` returns once
    everything submitted before it is on disk; `close` also stops the child.

    Example: w = RecordWriter(Path(".warmstart")); w.submit(result.record); w.flush(); w.close()
    """

    BATCH = 2048  # records per batch at most
    MAX_BACKLOG = 100_000
    RESTARTS = 3  # child deaths in a row (no batch committed in between) before giving up
    ACK_TIMEOUT_S = 60.0

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
        self._unacked: deque[tuple[int, bytes]] = deque()  # (batch number, frame)
        self._ack_buf = b""
        self._failures = 0
        self._wake = threading.Event()
        self._stop = False
        # Called with each invocation record as it is shipped (metrics), in the shipping thread.
        self.observers: list[Callable[[tuple[Any, ...]], None]] = []
        self._thread = threading.Thread(target=self._run, name="warmstart-records", daemon=True)
        self._thread.start()

    def submit(self, item: tuple[Any, ...]) -> None:
        self._items.append(item)
        if len(self._items) > self.MAX_BACKLOG:
            with self._lock:  # the writer cannot keep up: wait for it
                self._ship()

    def log(self, function: str, stream: str, text: str) -> None:
        """Append text that belongs to no invocation (a provisioned environment's INIT)."""
        self._items.append((function, stream, text))

    def flush(self) -> None:
        """Have everything submitted so far written (from any thread); returns when it is."""
        with self._lock:
            while self._items:
                self._ship()
            self._await_acks(time.monotonic() + self.ACK_TIMEOUT_S)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(60)
        with self._lock:
            while self._items:
                self._ship()
            child = self._child
            if child is None:
                return
            self._await_acks(time.monotonic() + self.ACK_TIMEOUT_S)
            assert child.stdin is not None
            with contextlib.suppress(OSError):
                child.stdin.close()  # the child commits what it has and exits
            try:
                child.wait(self.ACK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("the records writer did not exit; stopping it")
                child.kill()
                child.wait()
            self._close_child_pipes(child)
            self._child = None

    # -- the engine's side -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            try:
                with self._lock:
                    while self._items:
                        self._ship()
                    if self._unacked:
                        self._read_acks(0)
            except Exception:  # the engine must go on; the records wait for the next round
                log.exception("could not hand invocation records to their writer")

    def _ship(self) -> None:
        """Send up to BATCH waiting items to the child (the lock is held)."""
        items = self._items
        batch = []
        observers = self.observers
        for _ in range(self.BATCH):
            try:
                item = items.popleft()
            except IndexError:
                break
            batch.append(item)
            if len(item) != 3:
                for observe in observers:
                    try:
                        observe(item)
                    except Exception:  # a broken observer must not lose records
                        log.exception("a records observer failed")
        blob = marshal.dumps(batch)
        self._seq += 1
        frame = _HEADER.pack(self._seq, len(blob)) + blob
        self._unacked.append((self._seq, frame))
        self._send(frame)
        self._read_acks(0)

    def _send(self, frame: bytes) -> None:
        child = self._child or self._start()
        if child is None:
            return
        assert child.stdin is not None
        try:
            child.stdin.write(frame)
            child.stdin.flush()
        except OSError:  # the child is gone: a new one gets every unacknowledged batch
            self._restart()

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
            log.error("cannot start the records writer: %s; records are dropped", e)
            self._unacked.clear()
            return None
        assert child.stdin is not None and child.stdout is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(child.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        os.set_blocking(child.stdout.fileno(), False)
        self._child = child
        self._ack_buf = b""
        return child

    def _restart(self) -> None:
        old = self._child
        self._child = None
        if old is not None:
            with contextlib.suppress(OSError):
                old.kill()
            old.wait()
            self._close_child_pipes(old)
        self._failures += 1
        if self._failures > self.RESTARTS:
            lost = sum(len(marshal.loads(f[_HEADER.size :])) for _, f in self._unacked)
            log.error("the records writer keeps failing; %d records are dropped", lost)
            self._unacked.clear()
            self._failures = 0
            return
        log.warning("the records writer stopped; starting it again")
        child = self._start()
        if child is None:
            return
        assert child.stdin is not None
        try:
            for _, frame in list(self._unacked):
                child.stdin.write(frame)
            child.stdin.flush()
        except OSError:
            self._restart()

    def _read_acks(self, timeout_s: float) -> bool:
        """Take the child's acknowledgements (waiting up to timeout_s); False if it is gone."""
        child = self._child
        if child is None:
            return False
        assert child.stdout is not None
        fd = child.stdout.fileno()
        if timeout_s > 0:
            ready, _, _ = select.select([fd], [], [], timeout_s)
            if not ready:
                return True
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            self._restart()
            return False
        buf = self._ack_buf + data
        whole = len(buf) - len(buf) % _ACK.size
        self._ack_buf = buf[whole:]
        if whole:
            last = _ACK.unpack_from(buf, whole - _ACK.size)[0]
            unacked = self._unacked
            while unacked and unacked[0][0] <= last:
                unacked.popleft()
            self._failures = 0
        return True

    def _await_acks(self, deadline: float) -> None:
        while self._unacked:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("the records writer has not written %d batches", len(self._unacked))
                return
            if not self._read_acks(min(left, 1.0)) and self._child is None:
                return  # given up (logged)

    @staticmethod
    def _close_child_pipes(child: subprocess.Popen[bytes]) -> None:
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


# -- the child's side ------------------------------------------------------------------------


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
    done = store.committed()
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
            if seq > done:
                store.add(marshal.loads(view[start : start + n]))
            last = seq
            at = start + n
        view.release()
        del buf[:at]
        if last:
            try:
                store.commit(last)
            except Exception:  # a full disk: say so, and go on with the next batches
                sys.stderr.write("warmstart: could not write invocation records\n")
                traceback.print_exc()
                store.discard()
            done = max(done, last)
            with contextlib.suppress(OSError):  # the engine is gone: write what it sent, then end
                os.write(1, _ACK.pack(last))
    store.close()
