"""SnapStart: a version's INIT runs once, in a snapshot process; new environments are its forks.

Lambda snapshots the microVM after INIT and resumes copies of it. One machine can have the same
semantics far cheaper: the snapshot process (forked from the interpreter's zygote) runs INIT and
the before-snapshot hooks, then forks each restored environment, which runs the after-restore
hooks and serves. A restore costs a fork, not an INIT. The snapshot process speaks the zygote's
protocol (runtime/zygote.py), so a restored environment is spawned like any other.

A fork copies one thread only: if INIT leaves threads (or child processes) running, copies would
be missing them, so the version falls back to normal cold starts, with one warning.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple

from ..errors import EngineError
from .environment import EXITED, OK, TIMED_OUT, Environment, InitOutcome
from .forkserver import ExitStatus, ForkServer, receive
from .runtime import cgroups

__all__ = ["Snapshot", "SnapshotServer", "Taken"]

EXIT_WAIT_S = 5.0
HELLO_TIMEOUT_S = 30.0  # from the spawn request to the process's first word (start-up, no INIT)
SPARE_WAIT_S = 0.05  # how long a restore waits for a spare on its way before spawning its own


class SnapshotServer(ForkServer):
    """One snapshot process: INIT once (`take`), then the zygote of the environments restored
    from it. Unlike an interpreter's zygote it is never restarted: a lost snapshot is replaced
    by a new one (see Snapshot).

    Example:
        snap = SnapshotServer(zygote, "ab12...", config, log_fd); init = snap.take(10.0)
    """

    def __init__(self, parent: ForkServer, snap_id: str, config: dict[str, Any], log_fd: int):
        super().__init__(parent.executable)
        self.name = "the SnapStart snapshot process"
        self.parent = parent
        self.id = snap_id
        self.config = config
        self.log_fd = log_fd
        self.exited: Future[ExitStatus] | None = None
        self.unsafe = ""  # why restores cannot be forked from it ('' when they can)

    def take(self, timeout_s: float) -> InitOutcome:
        """Start the process and wait for INIT: OK (see `unsafe`), "error", TIMED_OUT or EXITED."""
        started = time.perf_counter_ns()
        deadline = time.monotonic() + timeout_s
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.exited = self.parent.spawn(
                self.id, self.config, [os.dup(theirs.fileno()), os.dup(self.log_fd)]
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        hello = receive(ours, min(HELLO_TIMEOUT_S, deadline - time.monotonic()))
        self.pid = int(hello.get("pid", 0))
        ready = receive(ours, deadline - time.monotonic()) if self.pid else {}
        ms = (time.perf_counter_ns() - started) / 1e6
        init = ready.get("init", {})
        if ready.get("op") != "ready" or "error" in init or init.get("unsafe"):
            ours.close()
            timed_out = time.monotonic() >= deadline
            if timed_out:
                self._kill()
            status = self._wait_exit(EXIT_WAIT_S)
            if "error" in init:
                error = json.dumps(init["error"]).encode()
                return InitOutcome("error", ms, self._log(), init["max_rss_kb"], error, status)
            if not init.get("unsafe"):
                return InitOutcome(TIMED_OUT if timed_out else EXITED, ms, self._log(), exit=status)
            self.unsafe = str(init["unsafe"])
            return InitOutcome(OK, ms, self._log(), init["max_rss_kb"])
        cgroups.lift(self.config.get("cgroup"))  # it only forks restores now, as fast as it can
        self._attach(ours, ready)
        return InitOutcome(OK, ms, self._log(), init["max_rss_kb"])

    def _ended(self, config: dict[str, Any]) -> None:
        cgroups.remove(config.get("cgroup"))  # placed by the pool, which removes them too

    def _log(self) -> bytes:
        """What INIT wrote (the pool's copy of the log is read once, after INIT)."""
        size = os.fstat(self.log_fd).st_size
        return os.pread(self.log_fd, min(size, 1 << 20), 0) if size else b""

    def start(self) -> None:
        raise EngineError("the SnapStart snapshot process is gone")

    def _kill(self) -> None:
        if self.pid:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # it leads its own process group
            except OSError:
                pass

    def _wait_exit(self, timeout: float) -> ExitStatus | None:
        if self.exited is None:
            return None
        try:
            return self.exited.result(timeout)
        except FutureTimeout:
            return None

    def _wait_gone(self, timeout: float) -> None:
        if self._wait_exit(timeout) is None:
            self._kill()
            self._wait_exit(EXIT_WAIT_S)

    @property
    def alive(self) -> bool:
        return self._sock is not None and self.exited is not None and not self.exited.done()


class Taken(NamedTuple):
    """A snapshot as it was taken: restore from `server` when `init.ok` and not `unsafe`."""

    server: SnapshotServer | None
    init: InitOutcome
    unsafe: str = ""


class Snapshot:
    """A version's snapshot: taken in the background when the version is published, and taken
    again when the last one failed or its process is gone (the failure is reported each time,
    like an init error). Thread-safe; `get` blocks, `aget` awaits.

    It also keeps one restore spawned ahead (forked, in its cgroups, waiting to run the
    after-restore hooks): forking a process of boto3's size costs ~2 ms of page tables here,
    and entering cgroups ~1 ms, which a spare takes off the cold start. In a burst, the
    restores after the first are spawned on demand.

    Example:
        snap = Snapshot(lambda: take(version), spawn, dispose); snap.prepare(); snap.get()
    """

    def __init__(
        self,
        take: Callable[[], Taken],
        spawn_spare: Callable[[SnapshotServer], Environment | None],
        dispose: Callable[[Environment], None],
    ) -> None:
        self._take = take
        self._spawn_spare = spawn_spare
        self._dispose = dispose
        self._lock = threading.Lock()
        self._current: Future[Taken] | None = None
        self._spare: Environment | None = None
        self._wake = threading.Condition(self._lock)
        self._wanted = False
        self._worker: threading.Thread | None = None
        self._arriving: Future[None] | None = None  # the spare being spawned
        self._claimed = False  # a caller waits for it
        self._closed = False

    def prepare(self) -> Future[Taken]:
        """The snapshot being taken, or a usable one; starts taking a new one otherwise."""
        with self._lock:
            fut = self._current
            if fut is not None and (not fut.done() or _usable(fut.result())):
                return fut
            self._current = fut = Future()
            closed = self._closed
            spare, self._spare = self._spare, None  # restored from the one that is gone
        if spare is not None:
            self._dispose(spare)
        if closed:
            fut.set_result(Taken(None, InitOutcome(EXITED, 0.0)))
        else:
            threading.Thread(
                target=self._run, args=(fut,), name="warmstart-snapshot", daemon=True
            ).start()
        return fut

    def _run(self, fut: Future[Taken]) -> None:
        try:
            taken = self._take()
        except BaseException as e:  # the waiters must hear of it
            fut.set_exception(e)
            return
        with self._lock:
            dropped = self._closed or self._current is not fut  # discarded while it was taken
        if dropped and taken.server is not None:
            taken.server.close()
        fut.set_result(taken)
        self.refill()

    def _claim(self) -> tuple[Environment | None, Future[None] | None]:
        """The spare if it is ready, else the spawn of the next one if nobody waits for it."""
        with self._lock:
            env, self._spare = self._spare, None
            arriving = None
            if env is None and self._arriving is not None and not self._claimed:
                arriving, self._claimed = self._arriving, True
        return env, arriving

    def _take_spare(self) -> Environment | None:
        with self._lock:
            env, self._spare = self._spare, None
        return env

    def spare(self) -> Environment | None:
        """The restore spawned ahead: ready, or on its way (one caller waits for that, briefly:
        it is further along than a new spawn would be). None: spawn one now."""
        env, arriving = self._claim()
        if arriving is not None:
            try:
                arriving.result(SPARE_WAIT_S)
            except FutureTimeout:
                return None
            env = self._take_spare()
        return env

    async def aspare(self) -> Environment | None:
        """`spare` for the event loop."""
        env, arriving = self._claim()
        if arriving is not None:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(arriving)), SPARE_WAIT_S)
            except asyncio.TimeoutError:
                return None
            env = self._take_spare()
        return env

    def refill(self) -> None:
        """Have the next spare spawned in the background, if there is none. Called once the
        restore that took the last one has answered: spawning meanwhile would take the CPU
        (and this process's GIL) from that very cold start. Cheap: a worker does the rest."""
        with self._lock:
            if self._spare is not None or self._closed:
                return
            self._wanted = True
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._spawn_spares, name="warmstart-spare", daemon=True
                )
                self._worker.start()
            else:
                self._wake.notify()

    def _spawn_spares(self) -> None:
        while True:
            with self._lock:
                while not (self._wanted or self._closed):
                    self._wake.wait()
                if self._closed:
                    return
                self._wanted = False
                fut = self._current
                if fut is None or not fut.done() or fut.exception() is not None:
                    continue
                server = fut.result().server
                if server is None or not server.alive:
                    continue
                self._arriving, self._claimed = Future(), False
            env = None
            try:
                env = self._spawn_spare(server)
            except Exception:  # a spare only saves time: restores can spawn without one
                pass
            with self._lock:
                keep = env is not None and self._current is fut and not self._closed
                if keep and self._spare is None:
                    self._spare, env = env, None
                arriving, self._arriving = self._arriving, None
            assert arriving is not None
            arriving.set_result(None)
            if env is not None:
                self._dispose(env)

    def get(self) -> Taken:
        return self.prepare().result()

    async def aget(self) -> Taken:
        return await asyncio.wrap_future(self.prepare())

    def discard(self, closing: bool = False) -> None:
        """Drop the snapshot (its restored environments end with it); the next `get` takes a
        new one, unless `closing`."""
        with self._lock:
            fut, self._current = self._current, None
            spare, self._spare = self._spare, None
            self._closed = self._closed or closing
            self._wake.notify()
        if spare is not None:
            self._dispose(spare)
        if fut is not None and fut.done() and fut.exception() is None:
            server = fut.result().server
            if server is not None:
                server.close()


def _usable(taken: Taken) -> bool:
    if taken.unsafe:
        return True  # for good: this version starts normally
    return taken.init.ok and taken.server is not None and taken.server.alive
