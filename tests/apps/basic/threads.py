"""A background thread counts every millisecond; frozen environments stop counting."""

import threading
import time

TICKS = 0


def _tick():
    global TICKS
    while True:
        TICKS += 1
        time.sleep(0.001)


threading.Thread(target=_tick, daemon=True).start()


def handler(event, context):
    return {"ticks": TICKS, "now": time.time()}
