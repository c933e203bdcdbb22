"""Asynchronous (Event) invocations: persisted, run, retried, failed, redriven, never lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import BASIC, PY, spec, wait_for
from warmstart import RequestTooLargeError, ResourceNotFoundError


def invocations(state_dir, request_id):
    db = sqlite3.connect(state_dir / "warmstart.db")
    return db.execute(
        "SELECT status, error_type FROM invocations WHERE request_id = ? ORDER BY started_at",
        (request_id,),
    ).fetchall()


def waiting(state_dir):
    db = sqlite3.connect(state_dir / "warmstart.db")
    return db.execute("SELECT count(*) FROM events WHERE status != 'failed'").fetchone()[0]


def test_an_event_runs_with_the_request_id_it_was_given(make_runtime, state_dir):
    rt = make_runtime(spec("Echo", "echo.handler"))
    rid = rt.invoke_async("Echo", {"k": "v"})
    assert wait_for(lambda: waiting(state_dir) == 0)
    rt.flush()
    assert invocations(state_dir, rid) == [("success", None)]


def test_function_errors_are_retried_then_kept(make_runtime, state_dir):
    rt = make_runtime(spec("Raiser", "raiser.handler"), async_delay_scale=0.001)
    rid = rt.invoke_async("Raiser", {"id": 3})
    assert wait_for(lambda: rt.events("Raiser"), timeout=10)
    rt.flush()
    # The first attempt and Lambda's two retries (after 60 s and 120 s, scaled down here).
    assert invocations(state_dir, rid) == [("error", "OrderError")] * 3
    [failed] = rt.events("Raiser")
    assert (failed.id, failed.status, failed.attempts) == (rid, "failed", 2)
    assert (failed.error_type, failed.error_message) == ("OrderError", "bad order 3")


def test_maximum_retry_attempts(make_runtime, state_dir):
    rt = make_runtime(spec("Raiser", "raiser.handler", max_retry_attempts=0))
    rid = rt.invoke_async("Raiser", {})
    assert wait_for(lambda: rt.events("Raiser"))
    rt.flush()
    assert len(invocations(state_dir, rid)) == 1


def test_redrive(make_runtime, state_dir, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    raise ValueError('not yet')\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=code, max_retry_attempts=0))
    rid = rt.invoke_async("App", {})
    assert wait_for(lambda: rt.events("App"))
    (code / "app.py").write_text("def handler(e, c):\n    return 'fixed'\n")
    rt.recycle("App")
    assert rt.redrive() == 1
    assert wait_for(lambda: waiting(state_dir) == 0 and not rt.events("App"))
    rt.flush()
    assert invocations(state_dir, rid)[-1] == ("success", None)


def test_throttled_events_wait_and_expire(make_runtime, state_dir):
    rt = make_runtime(spec("Off", "noop.handler", reserved_concurrency=0, max_event_age_s=60))
    rid = rt.invoke_async("Off", {})
    time.sleep(0.3)
    assert waiting(state_dir) == 1  # throttled: retried with backoff, not failed
    db = sqlite3.connect(state_dir / "warmstart.db")
    with db:  # make it older than its MaximumEventAgeInSeconds, and due now
        db.execute("UPDATE events SET received_at = received_at - 120, next_attempt_at = 0")
    assert wait_for(lambda: rt.events("Off"), timeout=10)
    [failed] = rt.events("Off")
    assert (failed.id, failed.error_type) == (rid, "EventAgeExceeded")


def test_what_is_refused(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    with pytest.raises(ResourceNotFoundError):
        rt.invoke_async("Nope", {})
    with pytest.raises(RequestTooLargeError):
        rt.invoke_async("Echo", "x" * (1024 * 1024 + 1))


ACCEPT_THEN_DIE = (
    textwrap.dedent("""
    import os, sys
    from warmstart import FunctionSpec, Runtime
    rt = Runtime([FunctionSpec("Slow", "sleeper.handler", __CODE__, runtime=__PY__, timeout=60)],
                 state_dir=sys.argv[1])
    ids = [rt.invoke_async("Slow", {"seconds": 2}) for _ in range(3)]
    print(" ".join(ids), flush=True)
    sys.stdin.read()  # killed while the events are running or queued
""")
    .replace("__CODE__", repr(str(BASIC)))
    .replace("__PY__", repr(PY))
)


def test_events_accepted_before_a_crash_run_after_it(make_runtime, state_dir, tmp_path):
    script = tmp_path / "accept.py"
    script.write_text(ACCEPT_THEN_DIE)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(state_dir)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    ids = proc.stdout.readline().split()
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert waiting(state_dir) == 3  # killed mid-run: none of them finished
    # The next runtime on the same records runs them again.
    rt = make_runtime(spec("Slow", "sleeper.handler", timeout=60))
    assert wait_for(lambda: waiting(state_dir) == 0, timeout=30)
    rt.flush()
    for rid in ids:
        assert invocations(state_dir, rid)[-1] == ("success", None)
