"""Power tuning on real environments: the curve, failures, processors, parallel runs, charts."""

from __future__ import annotations

import re

import pytest

from conftest import spec
from warmstart.engine.limits import vcpus_for
from warmstart.tune import TuneOptions, save_chart, tune, write_report
from warmstart.tune.runner import _throttled

CPU = {"n": 1_000_000}  # ~100 ms of CPU at one vCPU: long against the 20 ms CPU period


def averages(doc):
    return {s["value"]: s["averageDuration"] for s in doc["stats"]}


@pytest.mark.cgroup
def test_cpu_bound_curve_follows_the_cpu_share(make_runtime, needs_cgroups):
    rt = make_runtime(spec("Cpu", "cpu.handler", timeout=60))
    opts = TuneOptions(memory=[128, 1024], num=5, payloads=[(CPU, 1)], parallel=True)
    result = tune(rt, "Cpu", opts)
    # Each invocation takes the time its own CPU work takes under its size's quota. Judged per
    # invocation, so the VM's speed, which drifts by 10-20% between the 1024 MB runs (the first
    # second) and the 128 MB runs (seven seconds), does not enter.
    for size in result.results:
        share = vcpus_for(size.memory_mb)
        ratios = [d / _throttled(cpu, share) for d, cpu, _ in size.samples]
        assert sum(ratios) / len(ratios) == pytest.approx(1.0, rel=0.1), (size.memory_mb, ratios)
    doc = result.as_dict()
    avg = averages(doc)
    # AWS: 128 MB takes 8x as long as 1024 MB for CPU-bound work (11.72 s against 1.46 s); here
    # the drift above moves the ratio of the two sizes' times by up to 30%.
    assert avg[128] / avg[1024] == pytest.approx(8.0, rel=0.35), avg
    assert all(m["cpuThrottled"] for m in doc["memory"])
    assert doc["power"] in (128, 1024) and doc["picks"]["speed"] == 1024


@pytest.mark.cgroup
def test_io_bound_curve_is_flat(make_runtime, needs_cgroups):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    opts = TuneOptions(memory=[128, 512, 1024], num=5, payloads=[({"seconds": 0.1}, 1)])
    # Medians: at 128 MB the runtime's own bit of CPU now and then waits out a 20 ms CPU period.
    p50 = {m["value"]: m["p50"] for m in tune(rt, "Sleeper", opts).as_dict()["memory"]}
    assert max(p50.values()) / min(p50.values()) < 1.10, p50
    # Cost follows memory when duration does not: the smallest size is the cheapest.
    assert tune(make_runtime(spec("S2", "sleeper.handler")), "S2", opts).as_dict()["power"] == 128


@pytest.mark.cgroup
@pytest.mark.parametrize(("handler", "payload"), [("cpu.handler", CPU),
                                                  ("sleeper.handler", {"seconds": 0.1})])  # fmt: skip
def test_model_mode_predicts_the_measured_curve(make_runtime, needs_cgroups, handler, payload):
    # Under a CPU quota, CPU-bound work here measured up to ~10% faster than the quota allows
    # (overruns are caught late), on top of the VM's drift: ten runs a size, two trimmed from
    # each end, keep single slow or fast runs out of the comparison.
    base = dict(memory=[128, 512, 1024], num=10, payloads=[(payload, 1)])

    def run(name, mode):
        # The measured sizes run at once (0.94 vCPU in all, on 2 cores), so they see the same
        # machine; this VM's speed drifts by 10-20% over half a minute. Predictions made just
        # before and just after, averaged, see that machine too.
        return tune(make_runtime(spec(name, handler, timeout=60)), name,
                    TuneOptions(mode=mode, parallel=mode == "measured", **base)).as_dict()  # fmt: skip

    before, measured, after = run("A", "model"), run("B", "measured"), run("C", "model")
    assert before["mode"] == after["mode"] == "model" and measured["mode"] == "measured"
    ratios = {
        size: (averages(before)[size] + averages(after)[size]) / 2 / ms
        for size, ms in averages(measured).items()
    }
    # The curve's shape within 20% at every size. Its overall scale is the machine's speed at
    # the time, which on this VM has been seen 30% apart between the profiled and the measured
    # runs even so; benchmarks/tune.py reports the absolute error over whole runs.
    scale = sorted(ratios.values())[len(ratios) // 2]
    for size, ratio in ratios.items():
        assert ratio / scale == pytest.approx(1, rel=0.20), (size, ratios, before, measured)
    assert 0.6 < scale < 1.6, (ratios, before, measured, after)


def test_a_failing_memory_size_does_not_stop_the_run(make_runtime):
    rt = make_runtime(spec("Hog", "hog.handler", memory_size=256, timeout=10))
    doc = tune(rt, "Hog", TuneOptions(memory=[128, 512], num=2,
                                      payloads=[({"mb": 200}, 1)])).as_dict()  # fmt: skip
    sizes = {m["value"]: m for m in doc["memory"]}
    assert sizes[128]["failed"] and "Runtime.OutOfMemory" in sizes[128]["errors"]
    assert not sizes[512]["failed"] and doc["power"] == 512
    assert "failed at 128 MB" in doc["recommendation"]


def test_allowed_exceptions_count_as_successes(make_runtime):
    rt = make_runtime(spec("Raiser", "raiser.handler"))
    failed = tune(rt, "Raiser", TuneOptions(memory=[256], num=2)).as_dict()
    assert failed["power"] is None
    rt2 = make_runtime(spec("Raiser2", "raiser.handler"))
    opts = TuneOptions(memory=[256], num=2, allowed_exceptions=["OrderError"])
    assert tune(rt2, "Raiser2", opts).as_dict()["power"] == 256


def test_processors_payload_weights_and_cold_starts(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    seen = []
    opts = TuneOptions(
        memory=[256, 512], num=6, only_cold_starts=True, seed=1,
        payloads=[({"k": "a"}, 1), ({"k": "b"}, 1000)],
        pre_processor=lambda p: {**p, "pre": True},
        post_processor=lambda p, result: seen.append((p, result["event"])),
    )  # fmt: skip
    doc = tune(rt, "Echo", opts).as_dict()
    assert all(m["coldStarts"] == 6 for m in doc["memory"])
    assert len(seen) == 12 and all(event == p and p["pre"] for p, event in seen)
    assert sum(p["k"] == "b" for p, _ in seen) >= 10  # weighted 1000:1


def test_parallel_runs_take_about_the_slowest_size(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    opts = TuneOptions(memory=[256, 512, 1024], num=3, payloads=[({"seconds": 0.2}, 1)],
                       parallel=True)  # fmt: skip
    result = tune(rt, "Sleeper", opts)
    slowest = max(r.wall_s for r in result.results)
    assert result.wall_s < slowest * 1.5 < sum(r.wall_s for r in result.results)


def test_report_and_chart_files(make_runtime, tmp_path):
    rt = make_runtime(spec("Noop", "noop.handler"))
    doc = tune(rt, "Noop", TuneOptions(memory=[128, 256], num=3)).as_dict()
    save_chart(doc, tmp_path / "c.png")
    save_chart(doc, tmp_path / "c.svg")
    write_report(doc, tmp_path / "r.html")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "c.svg").read_text()
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 3 and "Noop" in page
    # Offline: nothing to fetch (namespace URIs in the SVGs are names, not requests).
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)


def test_without_cgroups_the_run_says_cpu_is_not_throttled(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"), isolation="none")
    doc = tune(rt, "Noop", TuneOptions(memory=[128, 1024], num=2)).as_dict()
    assert doc["isolation"] == "none" and doc["cpuThrottling"] is False
    assert not any(m["cpuThrottled"] for m in doc["memory"])


def test_a_failing_processor_stops_the_run_with_a_clear_error(make_runtime):
    from warmstart.tune import TuneError

    def broken(payload):
        raise KeyError("tenant")

    for parallel in (False, True):
        opts = TuneOptions(memory=[128, 256], num=1, pre_processor=broken, parallel=parallel)
        with pytest.raises(TuneError, match="pre-processor failed: KeyError"):
            tune(make_runtime(spec(f"N{int(parallel)}", "noop.handler")), f"N{int(parallel)}", opts)
