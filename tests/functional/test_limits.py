"""Timeouts, memory limits, CPU proportional to memory, and freezing of idle environments."""

from __future__ import annotations

import logging
import os
import re
import statistics
import time
from pathlib import Path

import pytest

from conftest import process_gone, spec, wait_for


def test_timeout(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler", timeout=1))
    rt.invoke("Sleeper", {"seconds": 0.01})
    pid = rt.environments()[0]["pid"]
    t0 = time.monotonic()
    res = rt.invoke("Sleeper", {"seconds": 30})
    assert time.monotonic() - t0 < 3
    assert res.function_error == "Unhandled" and res.error_type == "Sandbox.Timedout"
    assert list(res.payload) == ["errorType", "errorMessage"]
    assert re.match(
        rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {res.request_id} "
        r"Task timed out after 1\.00 seconds$",
        res.payload["errorMessage"],
    )
    assert res.payload["errorMessage"] + "\n" in res.log
    assert "going to sleep" in res.log
    assert res.report.status == "timeout" and res.report.duration_ms == 1000.0
    assert res.report.line().endswith("\tStatus: timeout")
    # The environment was discarded.
    assert rt.environments() == [] and wait_for(lambda: process_gone(pid))
    assert rt.invoke("Sleeper", {"seconds": 0.01}).start_kind == "cold"


def test_remaining_time_counts_down(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler", timeout=2))
    res = rt.invoke("Sleeper", {"seconds": 0.5})
    assert 1300 < res.payload["remaining_ms"] < 1550


@pytest.mark.usefixtures("needs_cgroups")
def test_out_of_memory_with_cgroups(make_runtime):
    # At 128 MB the CPU share is small and faulting pages in is slow: give it time to hit OOM.
    rt = make_runtime(spec("Hog", "hog.handler", memory_size=128, timeout=15))
    assert rt.invoke("Hog", {"mb": 16}).payload == {"allocated_mb": 16}
    res = rt.invoke("Hog", {"mb": 400})
    assert res.error_type == "Runtime.OutOfMemory"
    assert res.payload == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {res.request_id} Error: Runtime exited with error: "
        "signal: killed",
    }
    assert res.report.max_memory_used_mb == 128
    assert res.report.line().endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert rt.invoke("Hog", {"mb": 1}).start_kind == "cold"


def test_out_of_memory_without_cgroups(make_runtime):
    rt = make_runtime(spec("Hog", "hog.handler", memory_size=128, timeout=15), isolation="none")
    assert "isolation: none (turned off)" in rt.isolation
    assert rt.invoke("Hog", {"mb": 16}).payload == {"allocated_mb": 16}
    res = rt.invoke("Hog", {"mb": 400})
    assert res.error_type == "Runtime.OutOfMemory"
    assert res.report.max_memory_used_mb == 128
    assert rt.invoke("Hog", {"mb": 1}).start_kind == "cold"


@pytest.mark.usefixtures("needs_cgroups")
def test_cpu_share_follows_memory(make_runtime):
    rt = make_runtime(
        spec("Small", "cpu.handler", memory_size=128, timeout=60),
        spec("Large", "cpu.handler", memory_size=1024, timeout=60),
    )
    rt.invoke("Small", {"n": 1})
    rt.invoke("Large", {"n": 1})
    large = rt.invoke("Large", {"n": 1_500_000})
    small = rt.invoke("Small", {"n": 1_500_000})
    assert small.cpu_throttled and large.cpu_throttled
    # Lambda: 128 MB gets 1/8 of the CPU 1024 MB gets; at least 4x slower here.
    assert small.report.duration_ms > 4 * large.report.duration_ms
    assert small.payload == large.payload


def _cpu_cgroup(pid):
    """pid's cgroup for the CPU controller (v1: the cpu hierarchy's; v2: the unified one)."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths.update(dict.fromkeys(controllers.split(","), path))
    return paths.get("cpu", paths.get(""))


@pytest.mark.usefixtures("needs_cgroups")
def test_environments_are_forked_at_the_lowest_cpu_weight(make_runtime):
    # A burst of cold starts must not take the cores from warmstart's own threads (a load run's
    # clock): the zygote, and so each fork until it enters a cgroup of its own, waits in a group
    # of the lowest CPU weight.
    rt = make_runtime(spec("Hello", "noop.handler"))
    rt.invoke("Hello", {})
    (spawn,) = rt.service.isolation.spawn
    zygote = next(iter(rt.service.adapter._servers.values())).pid
    assert spawn.as_posix().endswith(_cpu_cgroup(zygote)) and _cpu_cgroup(zygote) != "/"
    weight = spawn / "cpu.shares" if (spawn / "cpu.shares").exists() else spawn / "cpu.weight"
    assert weight.read_text().strip() in ("2", "1")
    env = rt.environments()[0]["pid"]
    assert _cpu_cgroup(env) not in (_cpu_cgroup(zygote), _cpu_cgroup(os.getpid()))


def test_cpu_is_not_throttled_without_cgroups(make_runtime):
    rt = make_runtime(spec("Small", "cpu.handler", memory_size=128, timeout=60), isolation="none")
    rt.invoke("Small", {"n": 1})
    res = rt.invoke("Small", {"n": 300_000})
    assert not res.cpu_throttled
    assert res.cpu_ms > 0


def test_idle_environments_are_frozen(make_runtime):
    rt = make_runtime(spec("Threads", "threads.handler"))
    first = rt.invoke("Threads", {})
    time.sleep(0.5)
    second = rt.invoke("Threads", {})
    # The thread ticks every ms while the handler runs; frozen between invocations, it ticked
    # only the few times it got to run before the freeze.
    assert second.payload["ticks"] - first.payload["ticks"] < 50


def test_freezing_can_be_turned_off(make_runtime):
    rt = make_runtime(spec("Threads", "threads.handler"), freeze=False)
    first = rt.invoke("Threads", {})
    time.sleep(0.5)
    second = rt.invoke("Threads", {})
    assert second.payload["ticks"] - first.payload["ticks"] > 200


def test_child_processes_are_frozen_too(make_runtime, shared_dir):
    rt = make_runtime(spec("Children", "children.handler"))
    out = shared_dir / "child.txt"
    rt.invoke("Children", {"file": str(out)})
    assert wait_for(out.exists)
    time.sleep(0.1)
    before = out.read_text()
    time.sleep(0.3)
    assert out.read_text() == before  # the child is stopped with its environment
    rt.invoke("Children", {"file": str(out), "sleep": 0.1})
    assert out.read_text() != before  # and runs again while its environment is invoked


def test_init_timeout(make_runtime, caplog):
    rt = make_runtime(
        spec("Slow", "initslow.handler", environment={"INIT_SLEEP": "30"}), init_timeout_s=1.0
    )
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        res = rt.invoke("Slow", {})
    assert time.monotonic() - t0 < 4
    assert res.error_type == "Sandbox.Timedout" and res.report.status == "timeout"
    assert (
        "INIT_REPORT Init Duration: " in res.log and "\tPhase: init\tStatus: timeout\n" in res.log
    )
    assert res.report.max_memory_used_mb > 0  # what it used until it was cut off
    assert "Slow: an INIT has run 0." in caplog.text and "of its 1 s limit" in caplog.text
    assert rt.environments() == []


def test_async_timeout_and_crash(make_runtime):
    import asyncio

    rt = make_runtime(
        spec("Sleeper", "sleeper.handler", timeout=1), spec("Exits", "exiter.handler")
    )

    async def main():
        return await asyncio.gather(
            rt.ainvoke("Sleeper", {"seconds": 30}),
            rt.ainvoke("Exits", {"how": "os._exit", "code": 9}),
            rt.ainvoke("Sleeper", {"seconds": 0.1}),
        )

    timed_out, crashed, ok = asyncio.run(main())
    assert timed_out.error_type == "Sandbox.Timedout" and timed_out.report.duration_ms == 1000.0
    assert crashed.error_type == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("exit status 9")
    assert ok.payload["slept"] == 0.1


def test_init_is_not_held_to_the_memory_share(make_runtime, needs_cgroups):
    # Lambda runs INIT with unthrottled vCPUs (about two) whatever the memory size, and holds the
    # function to its memory's share from the first invocation on.
    rt = make_runtime(
        spec("Small", "heavyinit.handler", memory_size=128, timeout=60),
        spec("Big", "heavyinit.handler", memory_size=1769, timeout=60),
    )

    def cold(name: str) -> tuple[float, float]:
        inits, durations = [], []
        for _ in range(3):
            rt.recycle(name)
            res = rt.invoke(name, {"n": 200_000})
            assert res.start_kind == "cold" and res.function_error is None, res.payload
            inits.append(res.report.init_duration_ms)
            durations.append(res.report.duration_ms)
        return statistics.median(inits), statistics.median(durations)

    small_init, small_duration = cold("Small")
    big_init, big_duration = cold("Big")
    assert small_init < 2 * big_init, (small_init, big_init)
    assert small_duration > 4 * big_duration, (small_duration, big_duration)  # 0.07 vs 1 vCPU
