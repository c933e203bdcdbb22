"""`warmstart stats` from the records of real invocations, and of an older database."""

from __future__ import annotations

import sqlite3
import threading
import time

from conftest import spec
from warmstart import TooManyRequestsError
from warmstart.observe.records import COLUMNS, connect
from warmstart.stats import stats


def test_counts_percentiles_concurrency_and_cost(make_runtime, state_dir):
    rt = make_runtime(
        spec("Noop", "noop.handler", memory_size=256),
        spec("Raiser", "raiser.handler"),
        spec("Paused", "noop.handler", reserved_concurrency=0),
        spec("Sleeper", "sleeper.handler"),
    )
    noop = [rt.invoke("Noop", {}) for _ in range(20)]
    for _ in range(2):
        rt.invoke("Raiser", {})
    for _ in range(3):
        try:
            rt.invoke("Paused", {})
        except TooManyRequestsError:
            pass
    threads = [threading.Thread(target=rt.invoke, args=("Sleeper", {"seconds": 0.3}))
               for _ in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rt.flush()
    doc = stats(state_dir)
    fns = doc["functions"]
    assert fns["Noop"]["invocations"] == 20 and fns["Noop"]["cold_starts"] == 1
    assert fns["Noop"]["cold_start_pct"] == 5.0 and fns["Noop"]["errors"] == 0
    durations = sorted(r.report.duration_ms for r in noop)
    assert abs(fns["Noop"]["duration_ms"]["p50"] / durations[9] - 1) < 0.006
    assert fns["Noop"]["duration_ms"]["max"] == round(durations[-1], 6)
    assert fns["Noop"]["init_ms"]["max"] == round(noop[0].report.init_duration_ms, 6)
    billed = sum(r.report.billed_duration_ms for r in noop) / 1000 * 0.25
    assert abs(fns["Noop"]["billed_gb_seconds"] - billed) < 1e-6
    assert fns["Raiser"]["errors_by_type"] == {"OrderError": 2}
    assert fns["Paused"]["throttles"] == 3 and fns["Paused"]["duration_ms"] is None
    assert fns["Sleeper"]["max_concurrency"] == 4
    assert doc["all"]["invocations"] == 20 + 2 + 3 + 4
    assert stats(state_dir, "Noop")["functions"].keys() == {"Noop"}
    assert stats(state_dir, since=time.time() + 120)["functions"] == {}


def test_an_older_database_is_upgraded_and_summarized(tmp_path):
    old = [(n, t) for n, t in COLUMNS if n != "concurrency"]
    db = sqlite3.connect(tmp_path / "warmstart.db")
    db.execute(f"CREATE TABLE invocations ({', '.join(f'{n} {t}' for n, t in old)})")
    row = ("id", "Old", "$LATEST", None, "env", "warm", None, None, 5.0, 5, 128, 20, "success",
           None, time.time(), 5.1, 1.0, 0, "x86_64")  # fmt: skip
    db.executemany(f"INSERT INTO invocations VALUES ({', '.join('?' * len(old))})", [row] * 7)
    db.commit()
    db.close()
    connect(tmp_path).close()  # what any warmstart command does first
    doc = stats(tmp_path)
    assert doc["functions"]["Old"]["invocations"] == 7
    assert doc["functions"]["Old"]["max_concurrency"] == 0  # not recorded back then


def test_no_records_yet(tmp_path):
    assert stats(tmp_path / "nothing") == {
        "since": None,
        "functions": {},
        "all": None,
        "precision": 0.0055,
        "unwritten": [],
    }
