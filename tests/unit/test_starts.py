"""StartSlots: a semaphore that threads and event loops share."""

from __future__ import annotations

import asyncio
import threading
import time

from warmstart.engine.starts import StartSlots


def test_threads_wait_for_a_slot():
    slots = StartSlots(2)
    inside, most = 0, 0
    lock = threading.Lock()

    def work():
        nonlocal inside, most
        slots.acquire()
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        slots.release()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most == 2 and inside == 0 and slots._free == 2


def test_coroutines_and_threads_share_the_slots():
    slots = StartSlots(1)
    order = []

    async def main():
        await slots.aacquire()
        blocked = threading.Thread(target=lambda: (slots.acquire(), order.append("thread")))
        blocked.start()
        waiter = asyncio.ensure_future(slots.aacquire())
        await asyncio.sleep(0.05)
        assert not waiter.done() and order == []  # both wait for the one slot
        slots.release()  # to the thread, which came first
        blocked.join(5)
        assert order == ["thread"] and not waiter.done()
        slots.release()  # the thread's turn is over: the coroutine's
        await asyncio.wait_for(waiter, 5)
        slots.release()

    asyncio.run(main())
    assert slots._free == 1


def test_a_cancelled_waiter_does_not_keep_a_slot():
    slots = StartSlots(1)

    async def main():
        await slots.aacquire()
        gone = asyncio.ensure_future(slots.aacquire())
        later = asyncio.ensure_future(slots.aacquire())
        await asyncio.sleep(0)
        gone.cancel()
        slots.release()  # skips the cancelled waiter
        await asyncio.wait_for(later, 5)
        slots.release()

    asyncio.run(main())
    assert slots._free == 1
