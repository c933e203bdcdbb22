"""How many environments may be starting (forked, put into their cgroups) at once.

A burst of cold starts on a machine of a few cores is where a local Lambda differs most from the
real one: there, every new environment starts on hardware of its own; here, hundreds of forks and
cgroup set-ups at once take the cores from the warm environments and from the event loop that
feeds them. Their invocations are then late, every late one finds all environments busy and
starts yet another, and a steady 1,000 invocations/s can end at the account's 1,000 environments.
Queueing just the start-up (a few milliseconds each) breaks that loop. The handler's own INIT is
not queued: it runs in its cgroup at the lowest CPU weight (runtime/cgroups.py), and an INIT that
waits on the network overlaps with any number of others, as on Lambda.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque

__all__ = ["StartSlots"]


class StartSlots:
    """A counting semaphore that threads and event loops can share.

    Example:
        slots = StartSlots()
        slots.acquire()            # or: await slots.aacquire()
        try: ...                   # fork, wait for HELLO
        finally: slots.release()
    """

    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots or max(2, 2 * (os.cpu_count() or 1))
        self._free = self.slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event | asyncio.Future[None]] = deque()

    def acquire(self) -> None:
        with self._lock:
            if self._free:
                self._free -= 1
                return
            granted = threading.Event()
            self._waiters.append(granted)
        granted.wait()

    async def aacquire(self) -> None:
        with self._lock:
            if self._free:
                self._free -= 1
                return
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # granted, then cancelled before it ran: pass the slot on
            raise  # (cancelled while waiting: _grant passes the slot on)

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, threading.Event):
                    waiter.set()
                    return
                if not waiter.cancelled():
                    waiter.get_loop().call_soon_threadsafe(self._grant, waiter)
                    return
            self._free += 1

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled after it was chosen
            self.release()
        else:
            waiter.set_result(None)
