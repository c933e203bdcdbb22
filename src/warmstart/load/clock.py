"""Waking the event loop at an exact time, for open-loop arrivals.

asyncio's timers wait in epoll with a timeout in whole milliseconds, so a callback due in 0.3 ms
runs about 1 ms later: half a millisecond of lateness on average, all of it the scheduler's. On
Linux a timerfd in the loop's selector wakes it at the nanosecond it is armed for; elsewhere the
loop's own timers serve, with their millisecond rounding. Waking an idle CPU can itself take
milliseconds on a VM, so while `spin()` says a core is free the loop polls through the last
SPIN_S before a due time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import Callable

__all__ = ["Clock"]

_CLOCK_MONOTONIC = 1  # the clock of time.monotonic(), which the event loop's time() reads
_TFD_TIMER_ABSTIME = 1
SPIN_S = 0.002  # how far ahead of a due time the loop stops sleeping and polls, when it may


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timerfd() -> tuple[int, Callable[[float], None]] | None:
    """A non-blocking timerfd and the function that arms it; None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    fd = create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None

    def arm(at: float) -> None:
        sec = int(at)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, max(1, int((at - sec) * 1e9))))
        settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)

    return fd, arm


class Clock:
    """Calls `fire()` in the loop at (or just after) each time it is armed for.

    Example:
        clock = Clock(loop, on_time)
        clock.arm(loop.time() + 0.0015)
        ...
        clock.close()
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fire: Callable[[], None],
        spin: Callable[[], bool] | None = None,
    ) -> None:
        self.loop = loop
        self.fire = fire
        self.spin = spin
        self._due = 0.0
        self._spinning = False
        self._handle: asyncio.TimerHandle | None = None
        found = _timerfd() if hasattr(loop, "add_reader") else None
        self.fd = found[0] if found else -1
        self._arm: Callable[[float], None] | None = found[1] if found else None
        if self.fd >= 0:
            try:
                loop.add_reader(self.fd, self._ready)
            except NotImplementedError:  # a loop without readers (Windows' proactor)
                os.close(self.fd)
                self.fd, self._arm = -1, None

    def arm(self, at: float) -> None:
        """Fire at loop time `at` (replacing any earlier arming)."""
        self._due = at
        if self.spin is not None and self.spin():
            if at - self.loop.time() <= SPIN_S:
                if not self._spinning:
                    self._spinning = True
                    self.loop.call_soon(self._poll)
                return
            at -= SPIN_S  # wake early, then spin the rest of the way
        self._set_timer(at)

    def _set_timer(self, at: float) -> None:
        if self._arm is not None:
            self._arm(at)
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(at, self._wake)

    def _poll(self) -> None:
        """One turn of the loop while spinning: fire when due, else come round again."""
        if self.loop.time() >= self._due:
            self._spinning = False
            self.fire()
        elif self.spin is not None and self.spin():
            self.loop.call_soon(self._poll)
        else:  # no core to spare any more: sleep
            self._spinning = False
            self._set_timer(self._due)

    def _ready(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:  # re-armed since it fired
            return
        self._wake()

    def _wake(self) -> None:
        if self._spinning:
            return
        if self.loop.time() >= self._due:
            self.fire()
        else:
            self.arm(self._due)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
