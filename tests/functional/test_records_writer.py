"""The records writer process: nothing lost or written twice when it dies, gone with the engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import BASIC, PY, process_gone, spec, wait_for
from warmstart.observe.records import query


def _request_ids(state_dir: Path) -> list[str]:
    return [r[0] for r in query(state_dir, "SELECT request_id FROM invocations")]


def _writer_pid(rt) -> int:
    writer = rt.service.writer
    assert wait_for(lambda: writer._child is not None, 5), "the writer process never started"
    return writer._child.pid


def test_a_killed_writer_is_replaced_and_loses_nothing(make_runtime, state_dir):
    rt = make_runtime(spec("Noop", "noop.handler"))
    writer = rt.service.writer
    ids = [rt.invoke("Noop", {}).request_id for _ in range(50)]
    with writer._lock:  # the engine does not see the acknowledgement before the writer dies
        while writer._items:
            writer._ship()
        assert writer._sent
        assert wait_for(lambda: len(_request_ids(state_dir)) == 50, 10)
        first = writer._child.pid
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: process_gone(first), 5)
    ids += [rt.invoke("Noop", {}).request_id for _ in range(50)]
    rt.flush()
    assert writer._child.pid != first
    # Every record once: the batch sent again to the new writer is not written twice.
    assert sorted(_request_ids(state_dir)) == sorted(ids)


def test_a_writer_killed_between_batches_many_times_still_writes_everything(
    make_runtime, state_dir
):
    rt = make_runtime(spec("Noop", "noop.handler"))
    ids = []
    for _ in range(5):  # more deaths than RESTARTS, but each new writer commits in between
        ids += [rt.invoke("Noop", {}).request_id for _ in range(20)]
        rt.flush()
        pid = _writer_pid(rt)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: process_gone(pid), 5)  # noqa: B023 (called here)
    ids += [rt.invoke("Noop", {}).request_id for _ in range(20)]
    rt.flush()
    assert sorted(_request_ids(state_dir)) == sorted(ids)


def test_the_writer_finishes_its_pipe_and_exits_when_the_engine_dies(tmp_path):
    """The engine's process is killed: the writer writes what it was sent, then ends."""
    state = tmp_path / "state"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from warmstart import Config, FunctionSpec, Runtime
        fn = FunctionSpec(name="Noop", handler="noop.handler", code_dir=Path({str(BASIC)!r}),
                          runtime={PY!r})
        rt = Runtime([fn], Config.resolve(state_dir=Path({str(state)!r})))
        ids = [rt.invoke("Noop", {{}}).request_id for _ in range(30)]
        w = rt.service.writer
        while w._items or w._child is None:  # shipped to the writer, not yet acknowledged
            time.sleep(0.01)
        print(w._child.pid, *ids, flush=True)
        time.sleep(60)
        """
    )
    engine = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert engine.stdout is not None
        writer_pid, *ids = engine.stdout.readline().split()
        engine.kill()
        engine.wait()
        assert wait_for(lambda: process_gone(int(writer_pid)), 10), "the writer outlived its engine"
        assert sorted(_request_ids(state)) == sorted(ids)
    finally:
        engine.kill()
        engine.wait()
