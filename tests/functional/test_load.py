"""`warmstart.load` against the real engine: open-loop arrivals, what a run measures."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from conftest import cpu_seconds, spec
from warmstart.load import LoadRun, Phase, Scenario, Script, Step, arrivals, load_script

LOAD = Path(__file__).parent.parent / "load"


def _script(rate: float, seconds: float, payload: object) -> Script:
    flow = (Step("invoke", {"payload": payload}),)
    return Script(None, [Phase("p", seconds, rate=rate)], [Scenario("s", "lambda", 1, flow)], {})


def test_a_lambda_script_against_a_function(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    script = load_script(LOAD / "lambda.yml")
    seconds = []
    doc = asyncio.run(LoadRun(script, rt, "Echo", seconds.append, seed=1).run())
    planned = len(arrivals(script.phases))
    assert doc["requests"] == doc["arrivals"] == planned == 50
    assert doc["errors"] == 0 and doc["throttles"] == 0
    assert doc["cold_starts"] >= 1 and doc["init_duration_ms"]["p50"] > 0
    assert 1 <= doc["peak_environments"] <= doc["cold_starts"]
    steady, ramp = doc["phases"]
    assert (steady["name"], steady["target_rps"], ramp["target_rps"]) == ("steady", 20.0, 30.0)
    assert abs(steady["achieved_rps"] - 20) < 1 and abs(ramp["achieved_rps"] - 30) < 1.5
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert sum(b["count"] for b in doc["latency_histogram"]) == 50
    assert doc["max_rps_before_errors"] > 0 and doc["first_error_at_s"] is None
    # A line per second, and the timeline adds up to every request.
    assert [s.t for s in seconds] == list(range(len(seconds))) and len(seconds) >= 2
    assert sum(s["requests"] for s in doc["timeline"]) == 50


def test_arrivals_keep_their_schedule_when_requests_are_slow(make_runtime):
    # Open loop: 10 arrivals/s of 0.3 s each start on time, on new environments, rather than
    # waiting for earlier ones; latency counts from the scheduled time.
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    doc = asyncio.run(LoadRun(_script(10, 1.0, {"seconds": 0.3}), rt, "Sleeper").run())
    assert doc["requests"] == 10 and doc["errors"] == 0
    assert abs(doc["phases"][0]["achieved_rps"] - 10) < 0.5
    assert doc["peak_environments"] >= 3
    assert doc["latency_ms"]["p50"] >= 300
    assert doc["scheduler_lateness_ms"]["p99"] < 100


def test_errors_by_type_and_throttles(make_runtime):
    rt = make_runtime(
        spec("Raiser", "raiser.handler"), spec("Off", "noop.handler", reserved_concurrency=0)
    )
    doc = asyncio.run(LoadRun(_script(20, 0.5, {"id": 1}), rt, "Raiser").run())
    assert doc["errors"] == 10 and doc["errors_by_type"] == {"OrderError": 10}
    assert doc["max_rps_before_errors"] == 0 and doc["first_error_at_s"] == 0
    doc = asyncio.run(LoadRun(_script(20, 0.5, {}), rt, "Off").run())
    assert doc["throttles"] == 10 and doc["errors"] == 0 and doc["cold_starts"] == 0


@pytest.mark.skipif((os.cpu_count() or 1) > 2, reason="with more cores a polling one is spare")
def test_environments_leave_the_load_clock_a_core(make_runtime):
    # Events 20 ms apart and a 300 ms polling budget: an environment allowed to poll would
    # spin through the whole run. The clock holds one of the two cores, so it must sleep.
    rt = make_runtime(spec("Noop", "noop.handler", memory_size=1769), env_spin_us=300_000)
    doc = asyncio.run(LoadRun(_script(50, 1.0, {}), rt, "Noop").run())
    assert doc["requests"] == 50 and doc["errors"] == 0
    spent = sum(cpu_seconds(env["pid"]) for env in rt.environments("Noop"))  # INIT included
    assert spent < 0.3, spent
    assert rt.service.callers() == 0  # the engine's own count again
