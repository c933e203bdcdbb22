"""SnapStart: restores forked from a snapshot process, hooks, uniqueness, fallbacks, no leaks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from conftest import process_gone, spec, wait_for
from warmstart.observe.logs import streams

BEFORE_AND_AFTER = ["before-2:!", "before-1", "after-1", "after-2"]


def snap(name: str = "Snap", handler: str = "snap.handler", **kw):
    return spec(name, handler, snap_start=True, auto_publish_alias="live", **kw)


def snapshot_log(state_dir: Path, function: str) -> str:
    """The log stream the snapshot's INIT went to (the stream no invocation ran in)."""
    texts = [s.path.read_text() for s in streams(state_dir, function)]
    return "".join(t for t in texts if "INIT_START" in t and "START RequestId" not in t)


def test_restores_run_the_hooks_in_order_and_latest_starts_normally(make_runtime, state_dir):
    rt = make_runtime(snap())
    assert any("on AWS it needs python3.12" in w for w in rt.warnings)
    latest = rt.invoke("Snap", {})
    assert latest.start_kind == "cold"
    assert latest.payload["order"] == []  # no snapshot: no hooks, as on Lambda
    assert latest.payload["init_type"] == "on-demand"
    assert latest.report.init_duration_ms is not None

    restored = rt.invoke("Snap", {}, "live")
    assert restored.start_kind == "restore"
    body = restored.payload
    assert body["order"] == BEFORE_AND_AFTER  # before-snapshot reversed, after-restore in order
    assert body["init_type"] == "snap-start"
    assert body["pid"] != body["init_pid"]  # INIT ran in the snapshot process
    assert body["stream"] == body["context_stream"] == restored.stream
    assert body["tmp"] == "written in INIT"  # /tmp is part of the snapshot
    assert Path(body["tmpdir"]).name in body["stream"]  # and each restore has its own

    report = restored.report
    assert report.init_duration_ms is None
    assert report.restore_duration_ms is not None and report.restore_duration_ms > 0
    assert report.billed_restore_duration_ms is not None
    line = report.line()
    assert "\tRestore Duration: " in line and "\tBilled Restore Duration: " in line
    assert "Init Duration" not in line
    assert restored.log.startswith("RESTORE_START Runtime Version: python:")
    assert "\nRESTORE_REPORT Restore Duration: " in restored.log
    assert "restored in" in restored.log  # the after-restore hook's output

    again = rt.invoke("Snap", {}, "live")
    assert again.start_kind == "warm" and again.payload["order"] == BEFORE_AND_AFTER
    rt.flush()
    snapshot = snapshot_log(state_dir, "Snap")
    assert "INIT_START" in snapshot and "INIT_REPORT Init Duration: " in snapshot
    assert "Phase: init\tStatus: success" in snapshot


def test_each_restore_draws_its_own_random_numbers(make_runtime):
    rt = make_runtime(snap())
    seen = []
    for _ in range(3):
        rt.recycle("Snap", "live")
        res = rt.invoke("Snap", {}, "live")
        assert res.start_kind == "restore"
        seen.append(res.payload)
    assert len({p["pid"] for p in seen}) == 3
    assert len({p["draw"] for p in seen}) == 3  # random is reseeded in every restore
    assert len({p["init_draw"] for p in seen}) == 1  # what INIT drew is the snapshot's
    assert len({p["shared_draw"] for p in seen}) == 1  # and so is a generator INIT made


def test_concurrent_restores_from_the_event_loop(make_runtime):
    rt = make_runtime(snap("Sleeper", "sleeper.handler"))

    async def burst():
        calls = [rt.ainvoke("Sleeper", {"seconds": 0.3}, "live") for _ in range(4)]
        return await asyncio.gather(*calls)

    results = asyncio.run(burst())
    assert [r.start_kind for r in results] == ["restore"] * 4
    assert len({r.environment_id for r in results}) == 4
    assert all(r.report.restore_duration_ms is not None for r in results)


def test_threads_left_running_by_init_fall_back_to_cold_starts(make_runtime, caplog):
    caplog.set_level(logging.WARNING, logger="warmstart")
    rt = make_runtime(snap("Threads", "threads.handler"))
    for _ in range(2):
        rt.recycle("Threads", "live")
        res = rt.invoke("Threads", {}, "live")
        assert res.start_kind == "cold"
        assert res.report.init_duration_ms is not None
        assert res.payload["ticks"] >= 0
    warnings = [r.getMessage() for r in caplog.records if "SnapStart is off" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "thread" in warnings[0] and "Threads:1" in warnings[0]


def test_a_crashing_snapshot_fails_like_an_init_error_and_is_replaced(make_runtime, state_dir):
    rt = make_runtime(snap("Crash", "initcrash.handler"))
    for _ in range(2):
        res = rt.invoke("Crash", {}, "live")
        assert res.function_error == "Unhandled"
        assert res.payload["errorType"] == "RuntimeError"
        assert res.payload["errorMessage"] == "cannot connect to the database"
        assert res.start_kind == "restore" and res.report.status == "error"
        assert "RESTORE_REPORT" in res.log and "Error Type: RuntimeError" in res.log
    rt.flush()
    # INIT ran again for the second invocation: one snapshot process each time, both reported.
    failed = snapshot_log(state_dir, "Crash")
    assert failed.count("Phase: init\tStatus: error\tError Type: RuntimeError") >= 2
    assert "cannot connect to the database" in failed


def test_a_hanging_snapshot_is_killed_at_the_init_timeout(make_runtime):
    rt = make_runtime(
        snap("Slow", "initslow.handler", environment={"INIT_SLEEP": "60"}), init_timeout_s=1
    )
    res = rt.invoke("Slow", {}, "live")
    assert res.function_error == "Unhandled"
    assert res.report.status == "timeout"
    assert rt.service.adapter._snapshots == []  # nothing kept of it


def test_a_failing_after_restore_hook_is_a_restore_error(make_runtime):
    rt = make_runtime(snap(environment={"FAIL_AFTER_RESTORE": "1"}))
    res = rt.invoke("Snap", {}, "live")
    assert res.function_error == "Unhandled"
    assert res.payload["errorType"] == "Runtime.AfterRestoreError"
    assert "division by zero" in res.payload["errorMessage"]
    assert res.start_kind == "restore" and res.report.status == "error"
    assert rt.invoke("Snap", {}).payload["order"] == []  # $LATEST never runs the hooks


def test_a_killed_snapshot_process_is_replaced(make_runtime):
    rt = make_runtime(snap())
    first = rt.invoke("Snap", {}, "live").payload
    os.kill(first["init_pid"], signal.SIGKILL)
    assert wait_for(lambda: process_gone(first["init_pid"]))
    rt.recycle("Snap", "live")  # its restores died with it
    second = rt.invoke("Snap", {}, "live")
    assert second.start_kind == "restore", second.payload
    assert second.payload["init_pid"] != first["init_pid"]


def test_published_versions_get_a_snapshot_and_nothing_is_leaked(make_runtime):
    rt = make_runtime(spec("Snap", "snap.handler", snap_start=True))
    assert rt.invoke("Snap", {}).start_kind == "cold"
    version = rt.publish_version("Snap")
    res = rt.invoke("Snap", {}, version)
    assert res.start_kind == "restore" and res.payload["order"] == BEFORE_AND_AFTER
    # The snapshot process and its spare are in the leak check the fixture runs at close.


@pytest.mark.parametrize("log_format", ["JSON"])
def test_json_logs_of_a_restore(make_runtime, log_format):
    rt = make_runtime(snap(log_format=log_format))
    res = rt.invoke("Snap", {}, "live")
    assert '"type": "platform.restoreStart"' in res.log
    assert '"type": "platform.restoreReport"' in res.log
    assert '"restoreDurationMs"' in res.log
