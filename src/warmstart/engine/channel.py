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
import time

from .runtime.protocol import frame_length

__all__ = ["TIMEOUT", "Channel"]

TIMEOUT = None  # what recv returns when the deadline passed first
_CHUNK = 1 << 18


class Channel:
    __slots__ = ("_buf", "_poll", "rfd", "spin_ns", "wfd")

    def __init__(self, wfd: int, rfd: int, spin_ns: int) -> None:
        self.wfd = wfd
        self.rfd = rfd
        self.spin_ns = spin_ns
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._buf = b""
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

    def send(self, data: bytes, deadline_ns: int) -> bool:
        """Write a whole frame; False if the peer is gone or the deadline passed."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.wfd, view) :]
            except BlockingIOError:
                if not self._wait(self.wfd, select.POLLOUT, deadline_ns):
                    return False
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

    async def arecv(self, deadline: float) -> bytes | None:
        """Like recv, for the event loop; deadline is in loop.time() seconds."""
        buf = self._buf
        if buf:
            frame = self._take(buf)
            if frame is not None:
                return frame
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes | None] = loop.create_future()

        def readable() -> None:
            try:
                chunk = os.read(self.rfd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if got.done():
                return
            if not chunk:
                self._buf = b""
                got.set_result(b"")
                return
            frame = self._take(self._buf + chunk if self._buf else chunk)
            if frame is not None:
                got.set_result(frame)

        def expire() -> None:
            if not got.done():
                got.set_result(TIMEOUT)

        loop.add_reader(self.rfd, readable)
        timer = loop.call_at(deadline, expire)
        try:
            return await got
        finally:
            timer.cancel()
            loop.remove_reader(self.rfd)

    def close(self) -> None:
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
