"""Environments that die outside an invocation are never handed to a caller.

An idle environment killed from outside, a provisioned one, the zygote that forks them, a
handler that kills that zygote: the next invocations run on new environments, and only the
invocation whose own environment died sees an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from conftest import PY, process_gone, spec, wait_for


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: process_gone(pid))  # a zombie counts: it is dead, not yet reaped


def test_an_idle_environment_killed_from_outside_is_replaced(make_runtime, caplog):
    rt = make_runtime(spec("Echo", "echo.handler"))
    first = rt.invoke("Echo", {})
    _kill(first.payload["pid"])
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        res = rt.invoke("Echo", {"n": 2})
    assert res.function_error is None, res.payload
    assert res.start_kind == "cold" and res.payload["pid"] != first.payload["pid"]
    assert "had exited" in caplog.text
    assert [e["pid"] for e in rt.environments()] == [res.payload["pid"]]


def test_the_next_idle_environment_is_taken_before_a_new_one(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))

    async def two() -> None:
        await asyncio.gather(
            rt.ainvoke("Sleeper", {"seconds": 0.3}), rt.ainvoke("Sleeper", {"seconds": 0.3})
        )

    asyncio.run(two())
    idle = rt.service.function("Sleeper").latest.pool.idle
    assert len(idle) == 2
    top, other = idle[-1].pid, idle[0].pid
    _kill(top)  # the most recently used one, which is taken first
    res = rt.invoke("Sleeper", {"seconds": 0})
    assert res.function_error is None and res.start_kind == "warm"
    assert [e["pid"] for e in rt.environments()] == [other]


def test_a_killed_provisioned_environment_is_replaced(make_runtime):
    rt = make_runtime(
        spec("Pc", "echo.handler", auto_publish_alias="live", provisioned_concurrency=1)
    )
    [env] = rt.environments()
    _kill(env["pid"])
    res = rt.invoke("Pc", {}, qualifier="live")
    assert res.function_error is None, res.payload
    assert res.start_kind == "cold"  # spilled over while its replacement initializes

    def replaced() -> bool:
        envs = [e for e in rt.environments() if e["init_type"] == "provisioned-concurrency"]
        return len(envs) == 1 and envs[0]["pid"] != env["pid"]

    assert wait_for(replaced, timeout=10)
    doc = rt.service.provisioned_concurrency("Pc", "live")
    assert doc is not None and doc["AllocatedProvisionedConcurrentExecutions"] == 1
    assert wait_for(lambda: rt.invoke("Pc", {}, qualifier="live").start_kind == "provisioned")


def test_the_reaper_drops_dead_idle_environments(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"), idle_timeout_s=600)
    pid = rt.invoke("Echo", {}).payload["pid"]
    _kill(pid)
    assert wait_for(lambda: rt.environments() == [], timeout=5)


def test_a_dead_zygote_is_restarted_and_its_environments_are_not_used(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    server = rt.service.adapter.server(PY)
    before = rt.invoke("Echo", {}).payload["pid"]
    zygote = server.pid
    _kill(zygote)
    assert wait_for(lambda: process_gone(before))
    for _ in range(3):
        res = rt.invoke("Echo", {})
        assert res.function_error is None, res.payload
    assert res.start_kind == "warm" and res.payload["pid"] != before
    assert server.pid != zygote and not process_gone(server.pid)


def test_a_dead_spare_restore_and_a_dead_snapshot_are_replaced(make_runtime):
    rt = make_runtime(spec("Snap", "snap.handler", snap_start=True, auto_publish_alias="live"))
    assert rt.invoke("Snap", {}, "live").start_kind == "restore"
    snapshot = rt.service.function("Snap").versions["1"].snapshot
    assert snapshot is not None
    assert wait_for(lambda: snapshot._spare is not None)
    _kill(snapshot._spare.pid)
    rt.recycle("Snap")
    res = rt.invoke("Snap", {}, "live")
    assert res.function_error is None, res.payload
    assert res.start_kind == "restore"

    server = snapshot.get().server
    assert server is not None
    _kill(server.pid)
    rt.recycle("Snap")
    res = rt.invoke("Snap", {}, "live")
    assert res.function_error is None, res.payload
    assert res.start_kind == "restore" and snapshot.get().server is not server
