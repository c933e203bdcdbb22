"""The benchmark scripts run and print what docs/benchmarks.md reads from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_quick_run():
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
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
