"""`warmstart bench` on real environments."""

from __future__ import annotations

import pytest

from conftest import spec
from warmstart.bench import BenchError, bench_cold, bench_warm


def test_cold_starts_and_where_init_goes(make_runtime):
    rt = make_runtime(spec("Imports", "initimports.handler"), import_time=True)
    doc = bench_cold(rt, "Imports", 3, payload={"k": 1})
    assert doc["n"] == 3 and doc["start_kind"] == "cold"
    assert len(rt.environments()) == 1  # each run replaced the last environment
    cold, init = doc["cold_start_ms"], doc["init_duration_ms"]
    assert 0 < init["p50"] <= cold["p50"] and init["max"] >= init["p50"]
    assert doc["max_memory_used_mb"] > 0 and doc["import_time_available"]
    packages = {p["package"] for p in doc["top_imports"]}
    assert {"email", "http"} <= packages
    assert all(0 <= p["share_of_init"] <= 1 for p in doc["top_imports"])


def test_without_import_time_there_is_nothing_to_attribute(make_runtime):
    rt = make_runtime(spec("Imports", "initimports.handler"))
    doc = bench_cold(rt, "Imports", 2)
    assert not doc["import_time_available"] and doc["top_imports"] == []


def test_warm_latency_and_overhead(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"))
    doc = bench_warm(rt, "Noop", 200)
    lat, dur, over = doc["latency_ms"], doc["duration_ms"], doc["overhead_ms"]
    assert dur["p50"] < lat["p50"] and over["p50"] <= lat["p50"]
    assert 0 < doc["overhead_share"] < 1


def test_a_failing_function_is_reported(make_runtime):
    rt = make_runtime(spec("Raiser", "raiser.handler"))
    with pytest.raises(BenchError, match="OrderError"):
        bench_warm(rt, "Raiser", 5)
    with pytest.raises(BenchError, match="OrderError"):
        bench_cold(rt, "Raiser", 2)


def test_failing_cold_starts_are_counted_not_the_end_of_the_run(make_runtime, shared_dir):
    counter = shared_dir / "count"
    rt = make_runtime(spec("Flaky", "flaky.handler", environment={"FLAKY_COUNTER": str(counter)}))
    doc = bench_cold(rt, "Flaky", 4, payload={"name": "x"})
    assert doc["n"] == 4 and doc["failed"] == 2
    assert doc["errors"] == {"RuntimeError": 2}
    assert doc["first"] == "RuntimeError: cold start 2 fails"
    assert doc["cold_start_ms"]["p50"] > 0  # from the two that worked
