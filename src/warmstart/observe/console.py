"""One line per invocation on the console of `warmstart serve`, and a failure's log with it.

A records observer (see writer.RecordWriter.observers): it runs in the records thread, off the
invoke path, a fraction of a second after each invocation. At thousands of invocations a second
a line each would be a wall of text and cost a core: past `lines_per_s` in a second, the rest of
that second is counted, and one line sums it up. Failures are shown first within that budget.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .record import (
    DURATION_MS,
    ERROR_TYPE,
    FUNCTION,
    INIT_MS,
    INIT_TEXT,
    OUTPUT,
    PLATFORM_TEXT,
    QUALIFIER,
    RESTORE_MS,
    START_KIND,
    STARTED_AT,
    VERSION,
    record_status,
)

__all__ = ["InvocationConsole"]

LOG_LINES = 6  # of a failure's log, the last ones
_COLOURS = {"ok": "32", "error": "31", "timeout": "31", "throttled": "33", "dim": "2"}


class InvocationConsole:
    """Writes a line per invocation record to `out` (colours when it is a terminal).

    Example: service.writer.observers.append(InvocationConsole(sys.stderr).observe)
    """

    def __init__(
        self,
        out: TextIO | None = None,
        lines_per_s: int = 20,
        colour: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stderr
        self.lines_per_s = lines_per_s
        self.colour = self.out.isatty() if colour is None else colour
        self.clock = clock
        self._lock = threading.Lock()
        self._second = 0.0
        self._shown = 0
        self._held: dict[str, int] = {}  # status -> invocations not shown this second

    def observe(self, rec: tuple[Any, ...]) -> None:
        status = record_status(rec)
        now = self.clock()
        with self._lock:
            if now - self._second >= 1.0:
                self._sum_up()
                self._second, self._shown = now, 0
            if self._shown >= self.lines_per_s:
                self._held[status] = self._held.get(status, 0) + 1
                return
            self._shown += 1
        self.out.write(self.line(rec, status))
        self.out.flush()

    def flush(self) -> None:
        """Sum up what the current second held back (at the end of a run)."""
        with self._lock:
            self._sum_up()

    def _sum_up(self) -> None:
        if not self._held:
            return
        total = sum(self._held.values())
        parts = ", ".join(f"{n:,} {status}" for status, n in sorted(self._held.items()))
        self._held = {}
        self.out.write(self._paint("dim", f"  ... and {total:,} more in that second ({parts})\n"))
        self.out.flush()

    def line(self, rec: tuple[Any, ...], status: str) -> str:
        """`12:04:01.123 Hello:live (1) cold  ok  1.20 ms  init 180.30 ms`, then a failure's
        last log lines, indented."""
        when = time.strftime("%H:%M:%S", time.localtime(rec[STARTED_AT]))
        ms = int(rec[STARTED_AT] * 1000) % 1000
        name = rec[FUNCTION] if not rec[QUALIFIER] else f"{rec[FUNCTION]}:{rec[QUALIFIER]}"
        if rec[VERSION] and rec[VERSION] != "$LATEST" and rec[VERSION] != rec[QUALIFIER]:
            name += f" ({rec[VERSION]})"
        outcome = "ok" if status == "success" else status
        error = rec[ERROR_TYPE]
        if error and status != "throttled":
            outcome = f"{outcome} {error}"
        parts = [f"{when}.{ms:03d}", name, rec[START_KIND], self._paint(status, outcome)]
        if rec[DURATION_MS] is not None:
            parts.append(f"{rec[DURATION_MS]:.2f} ms")
        for label, key in (("init", INIT_MS), ("restore", RESTORE_MS)):
            if rec[key] is not None:
                parts.append(f"{label} {rec[key]:.2f} ms")
        text = "  ".join(parts) + "\n"
        if status in ("error", "timeout"):
            text += self._tail(rec)
        return text

    def _tail(self, rec: tuple[Any, ...]) -> str:
        log = rec[INIT_TEXT] + _text(rec[OUTPUT]) + rec[PLATFORM_TEXT]
        lines = [line for line in log.splitlines() if line.strip()]
        shown = lines[-LOG_LINES:]
        errors = [line for line in lines[:-LOG_LINES] if line.startswith("[ERROR]")]
        if errors:  # the runtime's line with the error's message, above a long traceback
            shown = [errors[-1], "...", *shown]
        return "".join(self._paint("dim", f"    {line}\n") for line in shown)

    def _paint(self, kind: str, text: str) -> str:
        code = _COLOURS.get(kind, "31") if kind != "success" else _COLOURS["ok"]
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text


def _text(output: bytes | str) -> str:
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else output
