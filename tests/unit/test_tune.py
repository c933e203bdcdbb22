"""Power tuning's arithmetic, output shape, template edit and comparison, on hand-made runs."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from warmstart.pricing import invocation_cost
from warmstart.tune import (
    MemoryResult,
    TuneError,
    TuneOptions,
    TuneResult,
    choose,
    compare,
    load_run,
    parse_memory,
    percentile,
    set_memory_size,
    trimmed_mean,
)
from warmstart.tune.runner import _predict, _throttled


def test_trimmed_mean_drops_a_share_from_each_end():
    assert trimmed_mean([1, 2, 3, 4, 100], 0.2) == 3.0
    assert trimmed_mean([10, 1, 5, 3, 2, 9, 8, 4, 7, 6], 0.2) == pytest.approx(5.5)  # 3..8
    assert trimmed_mean([1, 2, 3, 4], 0.2) == 2.5  # floor(0.8) = 0: nothing dropped
    assert trimmed_mean([5.0], 0.4) == 5.0


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3, 1, 2], 100) == 3 and percentile([3, 1, 2], 1) == 1


STATS = [
    {"value": 128, "averagePrice": 2.0e-6, "averageDuration": 800.0},
    {"value": 512, "averagePrice": 1.0e-6, "averageDuration": 100.0},
    {"value": 1024, "averagePrice": 1.5e-6, "averageDuration": 60.0},
    {"value": 3008, "averagePrice": 4.0e-6, "averageDuration": 55.0},
]


def test_strategies_pick_as_power_tuning():
    assert choose(STATS, "cost")["value"] == 512
    assert choose(STATS, "speed")["value"] == 3008
    # balanced, weight 0.5: 0.5*p/4e-6 + 0.5*d/800 -> 512: 0.1875, 1024: 0.2250, 3008: 0.534
    assert choose(STATS, "balanced", 0.5)["value"] == 512
    # all weight on speed, none on cost: the fastest
    assert choose(STATS, "balanced", 0.0)["value"] == 3008
    tie = [dict(STATS[1]), dict(STATS[1], value=640, averageDuration=90.0)]
    assert choose(tie, "cost")["value"] == 640  # same price: the faster one


def test_parse_memory():
    assert parse_memory("1024, 128,128") == [128, 1024]
    assert parse_memory("ALL")[:3] == [128, 192, 256] and parse_memory("all")[-1] == 3008
    for bad in ("64", "abc", "", "128,20000"):
        with pytest.raises(TuneError):
            parse_memory(bad)


def _result(memory, durations, billed=None, errors=None, cold=0, inits=()):
    r = MemoryResult(memory, invocations=len(durations) + sum((errors or {}).values()))
    r.durations = list(durations)
    r.billed = list(billed or [int(d) + 1 for d in durations])
    r.errors = Counter(errors or {})
    r.cold_starts = cold
    r.inits = list(inits)
    return r


def test_output_keeps_power_tunings_shape_and_adds_more():
    results = [
        _result(128, [800.0] * 10, inits=[50.0], cold=1),
        _result(512, [100.0] * 10),
        _result(1024, [], errors={"Sandbox.Timedout": 10}),
    ]
    doc = TuneResult("Fn", TuneOptions(memory=[128, 512, 1024]), "x86_64", "cgroup-v1", results,
                     3.0).as_dict()  # fmt: skip
    assert doc["power"] == 512
    assert doc["cost"] == pytest.approx(invocation_cost(512, 101))
    assert doc["duration"] == 100.0
    assert doc["stats"] == [
        {"value": 128, "averagePrice": invocation_cost(128, 801), "averageDuration": 800.0},
        {"value": 512, "averagePrice": invocation_cost(512, 101), "averageDuration": 100.0},
    ]
    by_size = {m["value"]: m for m in doc["memory"]}
    assert by_size[1024]["failed"] and by_size[1024]["errors"] == {"Sandbox.Timedout": 10}
    assert by_size[128]["coldStarts"] == 1 and by_size[128]["initDurations"] == [50.0]
    assert {"p50", "p90", "p99"} <= set(by_size[512])
    assert doc["recommendation"].startswith("512 MB (cost)") and "failed at 1024 MB" in doc[
        "recommendation"]  # fmt: skip
    json.dumps(doc)  # plain JSON


def test_all_sizes_failing_recommends_nothing():
    results = [_result(128, [], errors={"Runtime.OutOfMemory": 3})]
    doc = TuneResult("Fn", TuneOptions(memory=[128]), "x86_64", "none", results, 1.0).as_dict()
    assert doc["power"] is None and "failed" in doc["recommendation"]


def test_throttled_cpu_time_follows_the_quota_periods():
    assert _throttled(10.0, 1.0) == 10.0
    # 0.5 of a 20 ms period: 10 ms run, 10 ms wait, ... 25 ms of CPU = 2 waits + 5 ms.
    assert _throttled(25.0, 0.5) == pytest.approx(45.0)
    assert _throttled(5.0, 0.5) == 5.0  # within the first quota: full speed


def test_model_keeps_waiting_time_and_stretches_cpu_time():
    profile = MemoryResult(1769)
    profile.samples = [(100.0, 1.0, None)] * 5 + [(30.0, 30.0, 8.0)]  # sleeps; a CPU-bound cold
    profile.invocations = 6
    at_128 = _predict(profile, 128)
    share = 128 / 1769
    assert at_128.durations[0] == pytest.approx(99.0 + _throttled(1.0, share))
    cold = _throttled(30.0, share) + 8.0  # INIT is not held to the memory share
    assert at_128.durations[-1] == pytest.approx(cold)
    assert at_128.inits == [8.0]
    assert at_128.cold_starts == 1 and at_128.cpu_throttled
    assert _predict(profile, 3008).durations == [100.0] * 5 + [38.0]


TEMPLATE = """\
# Comments, quoting and order stay.
Globals:
  Function:
    MemorySize: 256   # global
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      # the handler
      Handler: app.handler
      MemorySize:   128   # tuned by hand
      CodeUri: !Ref Code
  Other:
    Type: AWS::Serverless::Function
    Properties:
        Handler: "app.other"
  FromParam:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: !Ref Memory
"""


def test_auto_optimize_edits_only_the_memory_size(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    assert set_memory_size(path, "Hello", 512) == "changed 128 -> 512"
    assert path.read_text() == TEMPLATE.replace("MemorySize:   128", "MemorySize:   512")
    assert set_memory_size(path, "Other", 1024) == "added"
    assert "    Properties:\n        MemorySize: 1024\n        Handler:" in path.read_text()
    assert set_memory_size(path, "Other", 1024) == "unchanged"
    before = path.read_text()
    for name, message in (("FromParam", "not a number"), ("Nope", "no resource")):
        with pytest.raises(TuneError, match=message):
            set_memory_size(path, name, 512)
    assert path.read_text() == before


def test_compare_two_runs(tmp_path):
    before = {
        "stats": [
            {"value": 128, "averagePrice": 2e-6, "averageDuration": 200.0},
            {"value": 256, "averagePrice": 2e-6, "averageDuration": 100.0},
        ]
    }
    after = {"stats": [{"value": 128, "averagePrice": 1e-6, "averageDuration": 100.0}]}
    for name, doc in (("b.json", before), ("a.json", after)):
        (tmp_path / name).write_text(json.dumps(doc))
    rows = compare(load_run(tmp_path / "b.json"), load_run(tmp_path / "a.json"))  # fmt: skip
    assert rows == [{"value": 128, "durationBefore": 200.0, "durationAfter": 100.0,
                     "durationChangePct": -50.0, "priceBefore": 2e-6, "priceAfter": 1e-6,
                     "priceChangePct": -50.0}]  # fmt: skip
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(TuneError, match="not a tuning result"):
        load_run(tmp_path / "bad.json")
