"""The benchmark scripts run and print what docs/benchmarks.md reads from them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def quick_run(script: str) -> Any:
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_engine_benchmark_quick_run():
    out = quick_run("engine.py")
    for key in (
        "pipe_round_trip_floor",
        "warm_invoke",
        "warm_invoke_128mb",
        "cold_start",
        "idle_environment_memory",
        "targets",
    ):
        assert key in out, key
    assert out["warm_invoke"]["p50_us"] > 0 and len(out["warm_invoke"]["rounds"]) == 2
    assert out["cold_start"]["p50_ms"] > 0
    assert out["idle_environment_memory"]["environments"] == 10


def test_serve_benchmark_quick_run():
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    out = quick_run("serve.py")
    for c in ("1", "16", "64"):
        assert out["serve"][c]["rps"] > 0 and out["bare_uvicorn"][c]["rps"] > 0
        assert out["serve"][c]["errors"] == 0
    assert out["python_api_invoke_p50_us"] > 0
    assert out["targets"]["every_request_recorded"], out
    assert set(out["targets"]) >= {"rps>=5000", "no_errors", "http_overhead_p50_us<=200"}


def test_tune_benchmark_quick_run():
    out = quick_run("tune.py")
    assert len(out["sequential"]) == 2 and out["num"] == 2
    for run in out["sequential"]:
        assert 0 < run["function_s"] < run["wall_s"]
        assert set(run["curve_ms"]) == {"128", "256", "512", "1024", "1536", "3008"}
    assert out["parallel"]["wall_s"] < out["sequential"][1]["wall_s"]
    assert set(out["model_vs_measured"]) == {"cpu.handler", "sleeper.handler"}


def test_stats_on_a_million_records():
    """The stats benchmark checks its figures against the records table itself."""
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stats.py"), "--records", "1000000"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = json.loads(p.stdout)
    assert p.returncode == 0 and out["agree"], out["problems"]
    assert out["records"] == 1_000_000 and out["sample"]["invocations"] == 333_334


def test_load_benchmark_quick_run():
    out = quick_run("load.py")
    assert [r["start"] for r in out["runs"]] == ["cold", "warm"]
    for r in out["runs"]:
        assert r["requests"] == 400 and r["met"]["no_errors"] and r["met"]["rate_within_2pct"]
        assert r["lateness_ms"]["p50"] >= 0 and r["baseline_lateness_ms"]["p99"] > 0
        assert r["machine_stalls_per_s"] >= 0


def test_snapstart_benchmark_quick_run():
    out = quick_run("snapstart.py")
    assert out["restore"]["start_kind"] == "restore"
    assert out["normal_cold_start"]["start_kind"] == "cold"
    assert out["memory"]["restored"]["environments"] == 5
    assert out["memory"]["normal"]["environments"] == 5
    assert out["ratios"]["normal_cold_start_p50_over_restore_p50"] > 1
    assert set(out["targets"]) == {"restore_p50_ms<=3", "speedup>=50"}


def test_build_benchmark_quick_run():
    out = quick_run("build.py")
    assert out["first_build_s"] > 0 and out["second_build_s"] >= 0
    assert out["rounds"][0]["files"] > 0 and "second_build_s<1" in out["targets"]
