"""A framed, non-blocking pipe pair: the pool's end of a Python environment's channel.

Receiving spins briefly before it sleeps. A sleeping reader on this kind of machine (a VM with
idle vCPUs halted) pays ~50 us per wake-up on each side of a round trip; polling for the first
couple of hundred microseconds catches a fast handler's answer without that cost. The budget is
bounded, so a slow handler costs at most that much extra CPU per invocation.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time

from .runtime.protocol import frame_length

__all__ = ["TIMEOUT", "Channel"]

TIMEOUT = None  # what recv returns when the deadline passed first
# Between an event loop's polls, give the core to anything waiting for it: under `warmstart
# serve` an environment woken on this core runs SCHED_BATCH and would otherwise wait for the end
# of the polling (measured at 128 MB: p50 123 µs with normal environments, 359 µs with batch
# ones that waited).
yield_cpu = getattr(os, "sched_yield", lambda: None)
_CHUNK = 1 << 18


class Channel:
    __slots__ = ("_buf", "_eof", "_loop", "_poll", "_waiter", "rfd", "spin_ns", "wfd")

    def __init__(self, wfd: int, rfd: int, spin_ns: int) -> None:
        self.wfd = wfd
        self.rfd = rfd
        self.spin_ns = spin_ns
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._buf = b""
        self._eof = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop our reader is with
        self._waiter: asyncio.Future[bytes | None] | None = None
        self._poll = select.poll()
        self._poll.register(rfd, select.POLLIN)

    def _wait(self, fd: int, event: int, deadline_ns: int) -> bool:
        """Sleep until fd is ready or the deadline passes; False on timeout."""
        remaining = deadline_ns - time.perf_counter_ns()
        if remaining <= 0:
            return False
        p = select.poll()
        p.register(fd, event)
        return bool(p.poll(remaining // 1_000_000 + 1))

    def send(self, data: bytes, deadline_ns: int) -> bool | None:
        """Write a whole frame; False if the peer is gone, TIMEOUT if the deadline passed."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.wfd, view) :]
            except BlockingIOError:
                if not self._wait(self.wfd, select.POLLOUT, deadline_ns):
                    return TIMEOUT
            except OSError:
                return False
        return True

    def _take(self, buf: bytes) -> bytes | None:
        n = frame_length(buf)
        if n < 0 or n > len(buf):
            self._buf = buf
            return None
        if n == len(buf):
            self._buf = b""
            return buf
        self._buf = buf[n:]
        return buf[:n]

    def recv(self, deadline_ns: int) -> bytes | None:
        """The next frame; b"" when the environment closed its end; TIMEOUT at the deadline."""
        if self._loop is not None:
            self._detach()
        buf = self._buf
        if buf:
            frame = self._take(buf)
            if frame is not None:
                return frame
        fd = self.rfd
        poll = self._poll.poll
        clock = time.perf_counter_ns
        if self.spin_ns:
            # poll(0) costs a third of a read that fails with EAGAIN (no exception to raise)
            spin_end = clock() + self.spin_ns
            while not poll(0) and clock() < spin_end:
                pass
        while True:
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                now = clock()
                if now >= deadline_ns:
                    return TIMEOUT
                poll((deadline_ns - now) // 1_000_000 + 1)
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._buf = b""
                return b""
            buf = buf + chunk if buf else chunk
            frame = self._take(buf)
            if frame is not None:
                return frame

    async def asend(self, data: bytes) -> bool:
        """Write a whole frame without blocking the event loop; False if the peer is gone."""
        try:
            n = os.write(self.wfd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return False
        if n == len(data):
            return True
        loop = asyncio.get_running_loop()
        view = memoryview(data)[n:]
        done: asyncio.Future[bool] = loop.create_future()

        def writable() -> None:
            nonlocal view
            try:
                view = view[os.write(self.wfd, view) :]
            except BlockingIOError:
                return
            except OSError:
                view = view[:0]
                done.set_result(False)
                return
            if not view and not done.done():
                done.set_result(True)

        loop.add_writer(self.wfd, writable)
        try:
            return await done
        finally:
            loop.remove_writer(self.wfd)

    def poll_frame(self) -> bytes | None:
        """The answer if it comes within the polling budget, without yielding; else None.

        For an event loop with nothing else to do: going back to epoll and being woken costs
        a sleeping thread's wake-up, as much as a whole invocation on this kind of machine.
        """
        poll = self._poll.poll
        clock = time.perf_counter_ns
        end = clock() + self.spin_ns
        while not poll(0):
            if clock() >= end:
                return None
            yield_cpu()
        try:
            chunk = os.read(self.rfd, _CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            return b""
        return self._take(self._buf + chunk if self._buf else chunk)

    # -- the event loop side --------------------------------------------------------------
    #
    # A reader stays registered with the loop that last awaited this channel: registering and
    # unregistering a reader costs two epoll_ctl calls and uvloop's bookkeeping on every
    # invocation (about a tenth of a busy server's time). Another loop, or a synchronous recv,
    # first takes the registration back (in the owning loop's thread).

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self.rfd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            self._detach()  # an fd at end of file stays readable: do not spin the loop on it
        else:
            self._buf = self._buf + chunk if self._buf else chunk
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._eof:
            waiter.set_result(b"")
            return
        frame = self._take(self._buf)
        if frame is not None:
            waiter.set_result(frame)

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self._detach()
            loop.add_reader(self.rfd, self._on_readable)
            self._loop = loop

    def _detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.remove_reader(self.rfd)
            return
        done = threading.Event()

        def remove() -> None:
            loop.remove_reader(self.rfd)
            done.set()

        try:
            loop.call_soon_threadsafe(remove)
        except RuntimeError:  # that loop has stopped: its registration went with it
            return
        done.wait(5)

    async def arecv(self, deadline: float) -> bytes | None:
        """Like recv, for the event loop; deadline is in loop.time() seconds."""
        loop = asyncio.get_running_loop()
        self._attach(loop)  # first: until then another loop may still be reading into _buf
        buf = self._buf
        if buf:
            frame = self._take(buf)
            if frame is not None:
                return frame
        if self._eof:
            return b""
        waiter: asyncio.Future[bytes | None] = loop.create_future()
        self._waiter = waiter

        def expire() -> None:
            if not waiter.done():
                waiter.set_result(TIMEOUT)

        timer = loop.call_at(deadline, expire)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self._detach()  # before the fd number can be reused by something else
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
