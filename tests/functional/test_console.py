"""The console line of each invocation (what `warmstart serve` prints), from real records."""

from __future__ import annotations

import io
import re

from conftest import spec
from warmstart.observe.console import InvocationConsole


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_per_invocation_and_a_failures_log(make_runtime):
    out = io.StringIO()
    rt = make_runtime(spec("Echo", "echo.handler"), spec("Raiser", "raiser.handler"))
    rt.service.writer.observers.append(InvocationConsole(out).observe)
    rt.invoke("Echo", {})
    rt.invoke("Echo", {})
    rt.invoke("Raiser", {"id": 7})
    rt.flush()
    lines = out.getvalue().splitlines()
    time_ = r"\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(rf"{time_}  Echo  cold  ok  \d+\.\d\d ms  init \d+\.\d\d ms", lines[0])
    assert re.fullmatch(rf"{time_}  Echo  warm  ok  \d+\.\d\d ms", lines[1])
    assert re.match(rf"{time_}  Raiser  cold  error \w+Error  ", lines[2]), lines[2]
    tail = "\n".join(lines[3:])
    assert lines[3].startswith("    [ERROR] OrderError: bad order 7") and "raiser.py" in tail
    assert "\x1b[" not in out.getvalue()  # not a terminal: no colours


def test_past_its_budget_a_second_is_summed_up(make_runtime):
    out, clock = io.StringIO(), Clock()
    console = InvocationConsole(out, lines_per_s=2, colour=True, clock=clock)
    rt = make_runtime(spec("Echo", "echo.handler"), spec("Raiser", "raiser.handler"))
    rt.service.writer.observers.append(console.observe)
    for _ in range(4):
        rt.invoke("Echo", {})
    rt.invoke("Raiser", {})
    rt.flush()
    clock.now += 1.5
    rt.invoke("Echo", {})
    rt.flush()
    console.flush()
    lines = out.getvalue().splitlines()
    assert len([line for line in lines if "  Echo  " in line]) == 3
    assert "... and 3 more in that second (1 error, 2 success)" in out.getvalue()
    assert "\x1b[32mok\x1b[0m" in lines[0]  # a terminal: ok in green
