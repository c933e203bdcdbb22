"""Execution environments: the seam between pools and runtimes.

A pool only uses the `Environment` interface: start (INIT), invoke, freeze/thaw, kill. The Python
runtime implements it with a process forked from a zygote and the framed pipe protocol; a runtime
that speaks Lambda's Runtime API over HTTP (custom runtimes) implements the same interface.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .channel import TIMEOUT, Channel
from .forkserver import ExitStatus, ForkServer, pidfd_open
from .runtime import cgroups, protocol
from .starts import StartSlots

__all__ = [
    "EXITED",
    "GONE",
    "OK",
    "TIMED_OUT",
    "Environment",
    "InitOutcome",
    "PythonEnvironment",
    "Request",
    "Response",
]

OK = "ok"
TIMED_OUT = "timeout"
EXITED = "exited"
# The environment had already exited when the request was sent: it never saw the invocation,
# which can run elsewhere (an environment killed while it sat idle, or with its zygote).
GONE = "gone"
EXIT_WAIT_S = 5.0  # how long to wait for the zygote to report a dead environment's status


class Request:
    """One invocation as an environment receives it."""

    __slots__ = (
        "arn",
        "client_context",
        "deadline_ms",
        "event",
        "flags",
        "identity",
        "request_id",
        "trace_id",
    )

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        arn: str,
        event: bytes,
        client_context: bytes = b"",
        identity: bytes = b"",
        trace_id: bytes = b"",
        flags: int = 0,
    ) -> None:
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.arn = arn
        self.event = event
        self.client_context = client_context
        self.identity = identity
        self.trace_id = trace_id
        self.flags = flags  # protocol.POLL_NEXT or 0


class Response:
    """What came back: a result (`kind` OK), or the environment timed out or exited."""

    __slots__ = (
        "cpu_us",
        "duration_ms",
        "exit",
        "function_error",
        "kind",
        "log",
        "max_rss_kb",
        "payload",
    )

    def __init__(
        self,
        kind: str,
        function_error: bool = False,
        duration_ms: float = 0.0,
        max_rss_kb: int = 0,
        cpu_us: int = 0,
        log: bytes = b"",
        payload: bytes = b"",
        exit: ExitStatus | None = None,
    ) -> None:
        self.kind = kind
        self.function_error = function_error
        self.duration_ms = duration_ms
        self.max_rss_kb = max_rss_kb
        self.cpu_us = cpu_us
        self.log = log
        self.payload = payload
        self.exit = exit


class InitOutcome:
    """How INIT went: ok, or the runtime's error JSON, or a timeout / exit."""

    __slots__ = ("duration_ms", "error", "exit", "kind", "log", "max_rss_kb", "runtime_ms")

    def __init__(
        self,
        kind: str,
        duration_ms: float,
        log: bytes = b"",
        max_rss_kb: int = 0,
        error: bytes = b"",
        exit: ExitStatus | None = None,
        runtime_ms: float = 0.0,
    ) -> None:
        self.kind = kind  # OK, "error" (the runtime reported an init error), TIMED_OUT, EXITED
        self.duration_ms = duration_ms  # from the request to start it to its answer
        self.runtime_ms = runtime_ms  # as the process measured it (a restore's billed part)
        self.log = log
        self.max_rss_kb = max_rss_kb
        self.error = error
        self.exit = exit

    @property
    def ok(self) -> bool:
        return self.kind == OK


class Environment(ABC):
    """One execution environment: one process, one invocation at a time."""

    id: str
    pid: int
    init_type: str
    stream: str  # its log stream name, `YYYY/MM/DD/[version]<id>`
    memory_mb: int
    created: float  # monotonic
    last_used: float  # monotonic
    invocations: int
    oom: bool  # set by a memory watchdog that killed it
    max_rss_kb: int
    retired = False  # discard instead of reusing when its invocation ends

    @abstractmethod
    def alive(self) -> bool:
        """Whether the process still runs (checked when an idle environment is taken)."""

    @abstractmethod
    def start(self, timeout_s: float) -> InitOutcome: ...

    @abstractmethod
    async def astart(self, timeout_s: float) -> InitOutcome: ...

    @abstractmethod
    def invoke(self, request: Request, timeout_s: float) -> Response: ...

    @abstractmethod
    async def ainvoke(self, request: Request, timeout_s: float, spin: bool = False) -> Response:
        """`invoke` for the event loop; `spin`: poll briefly for the answer before yielding."""

    @abstractmethod
    def freeze(self) -> None: ...

    @abstractmethod
    def thaw(self) -> None: ...

    @abstractmethod
    def kill(self) -> None:
        """End the environment now (SIGKILL); returns at once."""

    @abstractmethod
    def shutdown(self) -> None:
        """SHUTDOWN of an idle environment: let it end; returns at once."""

    @abstractmethod
    def wait(self, timeout_s: float) -> ExitStatus | None:
        """Block until the process has ended and been cleaned up."""

    @abstractmethod
    def close(self) -> None:
        """Release what the pool holds for a dead environment (idempotent)."""


class PythonEnvironment(Environment):
    """A Python environment forked from a zygote, spoken to over two pipes."""

    def __init__(
        self,
        server: ForkServer,
        env_id: str,
        config: dict[str, Any],
        memory_mb: int,
        init_type: str,
        stream: str,
        spin_us: int,
        starts: StartSlots,
        freeze: bool = True,
    ) -> None:
        self.server = server
        self.starts = starts
        self.id = env_id
        self.config = config
        self.memory_mb = memory_mb
        self.init_type = init_type
        self.stream = stream
        self.spin_ns = spin_us * 1000
        self.freezing = freeze
        self.pid = 0
        self.created = self.last_used = time.monotonic()
        self.invocations = 0
        self.oom = False
        self.max_rss_kb = 0
        self.frozen = False
        self.channel: Channel | None = None
        self.log_fd = -1
        self.pidfd = -1  # readable once the process has exited (see alive)
        self.parent_pidfd = -1  # its zygote's (or snapshot process's)
        self._exit_poll: select.poll | None = None
        self.exited: Future[ExitStatus] | None = None
        # A SnapStart restore: after HELLO it waits for RESUME, so it can be spawned ahead.
        self.restore = "snapshot_tmp_dir" in config
        self.hello: bytes | None = None  # HELLO, once spawned ahead (see spawn_ahead)

    # -- INIT ------------------------------------------------------------------------------

    def _spawn(self) -> Channel:
        fds: list[int] = []
        try:  # (at the open-files limit any of these fails: none may be left open)
            fds += os.pipe()
            fds += os.pipe()
            fds.append(os.memfd_create("warmstart-log"))
            fds.append(os.dup(fds[-1]))  # the child's copy of the log
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        req_r, req_w, resp_r, resp_w, self.log_fd, child_log = fds
        try:
            # spawn() owns and closes the fds it hands over: the child's ends, its log.
            self.exited = self.server.spawn(self.id, self.config, [req_r, resp_w, child_log])
            self.parent_pidfd = self.server.pidfd  # (kept open by the server)
        except BaseException:
            for fd in (req_w, resp_r, self.log_fd):
                os.close(fd)
            self.log_fd = -1
            raise
        self.channel = Channel(req_w, resp_r, self.spin_ns)
        return self.channel

    def _hello(self, frame: bytes | None) -> bytes | None:
        """The first frame: the process's pid, known before INIT so INIT can be cut short. A
        restore is moved into its cgroups now, before RESUME (see bootstrap.restore)."""
        if frame:
            self.pid = int(protocol.decode_response(frame)[6])
            if self.restore:
                try:
                    cgroups.place(self.config.get("cgroup"), self.pid)
                except OSError:  # it is gone already: INIT's outcome says so
                    pass
            self.pidfd = pidfd_open(self.pid)
            if self.pidfd >= 0:
                self._exit_poll = select.poll()
                for fd in (self.pidfd, self.parent_pidfd):
                    if fd >= 0:
                        self._exit_poll.register(fd, select.POLLIN)
        return frame

    def alive(self) -> bool:
        # One poll of its pidfd and its zygote's (~0.3 us) knows at once, before the zygote's
        # report of its end, and before a parent-death signal has ended it.
        if self._exit_poll is not None:
            return not self._exit_poll.poll(0)
        return self.exited is None or not self.exited.done()  # (Linux < 5.3)

    def _init_outcome(self, hello: bytes | None, frame: bytes | None, started: int) -> InitOutcome:
        ms = (time.perf_counter_ns() - started) / 1e6
        if frame is TIMEOUT or hello is TIMEOUT:
            self._note_peak_rss()
            self.kill()
            self.wait(EXIT_WAIT_S)
            return InitOutcome(TIMED_OUT, ms, self._take_leftover_log(), self.max_rss_kb)
        if not frame:
            status = self.wait(EXIT_WAIT_S)
            return InitOutcome(EXITED, ms, self._take_leftover_log(), exit=status)
        kind, flags, own_ms, rss, _, log, payload = protocol.decode_response(frame)
        self.max_rss_kb = rss
        if kind == protocol.INIT_DONE:
            if not self.restore:  # INIT ran at the lowest CPU weight (see cgroups.INIT_SHARES)
                cgroups.init_done(self.config.get("cgroup"))
            if flags & protocol.BUSY_WHEN_IDLE:
                self.freeze()
            self.last_used = time.monotonic()
            return InitOutcome(OK, ms, log, rss, runtime_ms=own_ms)
        self.wait(EXIT_WAIT_S)
        self.close()
        return InitOutcome("error", ms, log, rss, error=payload)

    def _spawn_hello(self, deadline_ns: int) -> bytes | None:
        self.starts.acquire()
        try:
            return self._hello(self._spawn().recv(deadline_ns))
        finally:
            self.starts.release()

    def spawn_ahead(self, timeout_s: float) -> bool:
        """Spawn a restore up to its after-restore hooks, ready to `start` in a moment."""
        self.hello = self._spawn_hello(time.perf_counter_ns() + int(timeout_s * 1e9))
        return bool(self.hello) and self.hello is not TIMEOUT

    def start(self, timeout_s: float) -> InitOutcome:
        started = time.perf_counter_ns()
        deadline = started + int(timeout_s * 1e9)
        hello = self.hello if self.hello is not None else self._spawn_hello(deadline)
        channel = self.channel
        assert channel is not None
        if hello and self.restore:
            channel.send(protocol.RESUME_FRAME, deadline)
        frame = channel.recv(deadline) if hello else hello
        return self._init_outcome(hello, frame, started)

    async def astart(self, timeout_s: float) -> InitOutcome:
        started = time.perf_counter_ns()
        deadline = asyncio.get_running_loop().time() + timeout_s
        hello = self.hello
        if hello is None:
            await self.starts.aacquire()
            try:
                frame = await self._spawn().arecv(deadline)
                if self.restore:  # placing it in its cgroups takes a millisecond: not here
                    loop = asyncio.get_running_loop()
                    hello = await loop.run_in_executor(None, self._hello, frame)
                else:
                    hello = self._hello(frame)
            finally:
                self.starts.release()
        channel = self.channel
        assert channel is not None
        if hello and self.restore:
            await channel.asend(protocol.RESUME_FRAME)
        frame = await channel.arecv(deadline) if hello else hello
        if frame is TIMEOUT or hello is TIMEOUT:
            self._note_peak_rss()
            self.kill()
        if self.exited is not None and (not frame or frame[4] != protocol.INIT_DONE):
            await asyncio.wrap_future(self.exited)  # it is ending: let the zygote report it
        return self._init_outcome(hello, frame, started)

    # -- INVOKE ----------------------------------------------------------------------------

    def _frame(self, r: Request) -> bytes:
        return protocol.encode_invoke(
            r.deadline_ms,
            r.request_id.encode(),
            r.arn.encode(),
            r.event,
            r.client_context,
            r.identity,
            r.trace_id,
            r.flags,
        )

    def _response(self, frame: bytes | None) -> Response:
        if frame is TIMEOUT:
            self.kill()
            status = self.wait(EXIT_WAIT_S)
            return Response(
                TIMED_OUT, log=self._take_leftover_log(), max_rss_kb=self.max_rss_kb, exit=status
            )
        if not frame:
            status = self.wait(EXIT_WAIT_S)
            return Response(
                EXITED, log=self._take_leftover_log(), max_rss_kb=self.max_rss_kb, exit=status
            )
        _, flags, duration, rss, cpu, log, payload = protocol.decode_response(frame)
        self.max_rss_kb = rss
        self.invocations += 1
        if flags & protocol.BUSY_WHEN_IDLE:
            self.freeze()
        self.last_used = time.monotonic()
        return Response(OK, bool(flags & protocol.FUNCTION_ERROR), duration, rss, cpu, log, payload)

    def invoke(self, request: Request, timeout_s: float) -> Response:
        channel = self.channel
        assert channel is not None
        deadline = time.perf_counter_ns() + int(timeout_s * 1e9)
        if self.frozen:
            self.thaw()
        if channel.send(self._frame(request), deadline) is False:
            return Response(GONE)
        return self._response(channel.recv(deadline))

    async def ainvoke(self, request: Request, timeout_s: float, spin: bool = False) -> Response:
        channel = self.channel
        assert channel is not None
        deadline = asyncio.get_running_loop().time() + timeout_s
        self.thaw()
        if not await channel.asend(self._frame(request)):
            return Response(GONE)
        frame = channel.poll_frame() if spin else None
        if frame is None:
            frame = await channel.arecv(deadline)
        if frame is not TIMEOUT and not frame and self.exited is not None:
            await asyncio.wrap_future(self.exited)
        elif frame is TIMEOUT and self.exited is not None:
            self.kill()
            await asyncio.wrap_future(self.exited)
        return self._response(frame)

    # -- process control -------------------------------------------------------------------

    def _signal(self, sig: int) -> None:
        if self.pid:
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass

    def freeze(self) -> None:
        if self.freezing and not self.frozen:
            self._signal(signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self._signal(signal.SIGCONT)
            self.frozen = False

    def kill(self) -> None:
        if self.pid:
            self._signal(signal.SIGKILL)
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        elif self.channel is not None:
            self.channel.close()  # not started yet: closing its pipes ends it
        self.frozen = False

    def shutdown(self) -> None:
        """SHUTDOWN: ask the environment to end by closing its request pipe; kill if frozen."""
        if self.frozen:
            self.kill()
        elif self.channel is not None:
            self.channel.close()
            self.channel = None

    def wait(self, timeout_s: float) -> ExitStatus | None:
        if self.exited is None:
            return None
        try:
            return self.exited.result(timeout_s)
        except FutureTimeout:
            return None

    def close(self) -> None:
        """Release the pool's file descriptors (the process is gone)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
            self._exit_poll = None

    def _note_peak_rss(self) -> None:
        """Its peak RSS, from /proc: an INIT cut off at its limit never sends its own."""
        if not self.pid:
            return
        try:
            with open(f"/proc/{self.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        self.max_rss_kb = max(self.max_rss_kb, int(line.split()[1]))
                        return
        except (OSError, ValueError, IndexError):  # gone already
            pass

    def _take_leftover_log(self) -> bytes:
        """Output the environment wrote before it died (it could not send it), then close."""
        data = b""
        if self.log_fd >= 0:
            try:
                size = os.fstat(self.log_fd).st_size
                data = os.pread(self.log_fd, min(size, 1 << 20), 0) if size else b""
            except OSError:
                pass
        self.close()
        return data

    def __repr__(self) -> str:
        return f"<PythonEnvironment {self.id[:8]} pid={self.pid} {self.init_type}>"
