"""Artillery scripts: parsing, unknown keys, templates, and the open-loop arrival schedule."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from warmstart.load import Phase, ScriptError, arrivals, load_script, phase_arrivals, render

LOAD = Path(__file__).resolve().parents[1] / "load"


def test_phases_scenarios_and_engines():
    script = load_script(LOAD / "http.yml")
    assert script.target == "http://127.0.0.1:3000" and script.unknown == []
    warm, ramp, pause, count = script.phases
    assert (warm.name, warm.duration_s, warm.rate, warm.ramp_to) == ("warm up", 10, 5, None)
    assert (ramp.rate, ramp.ramp_to) == (5, 50) and pause.pause and pause.duration_s == 5
    assert count.count == 25
    browse, direct = script.scenarios
    assert browse.weight == 3 and [s.kind for s in browse.flow] == ["get", "think", "post"]
    assert browse.flow[2].spec["json"]["n"] == "{{ $randomNumber(1, 9) }}"
    assert direct.engine == "lambda" and direct.flow[0].spec == {"payload": '{"n": 1}'}
    assert script.variables == {"color": ["red", "green"]}


def test_unknown_keys_are_reported_by_path():
    script = load_script(LOAD / "unknown.yml")
    assert script.unknown == [
        "config.http",
        "config.phases[0].maxVusers",
        "scenarios[0].flow[0].get.capture",
        "scenarios[0].flow[1].loop",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config: {}\n", "phases"),
        ("config: {phases: [{arrivalRate: 1}]}\nscenarios: [{flow: []}]\n", "duration"),
        ("config: {phases: [{duration: 1, arrivalRate: -1}]}\n", "number >= 0"),
        ("config: {phases: [{duration: 1, arrivalRate: 1}]}\nscenarios: [{flow: [{get: {url: /}}]}]\n",
         "config.target"),
        ("config: {target: x, phases: [{duration: 1, arrivalRate: 1}]}\n"
         "scenarios: [{flow: [{invoke: {}}]}]\n", "engine: lambda"),
        ("config: {target: x, phases: [{duration: 1, arrivalRate: 1}]}\n"
         "scenarios: [{engine: ws, flow: []}]\n", "not supported"),
        ("config: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_scripts_say_where(tmp_path, text, message):
    path = tmp_path / "load.yml"
    path.write_text(text)
    with pytest.raises(ScriptError, match=message):
        load_script(path)


def test_templates():
    rng = random.Random(1)
    value = render({"id": "{{ $randomNumber(1, 100) }}", "url": "/i/{{ $randomNumber(5, 5) }}",
                    "s": "{{ $randomString(12) }}", "c": ["{{ color }}"]},
                   {"color": "red"}, rng)  # fmt: skip
    assert isinstance(value["id"], int) and 1 <= value["id"] <= 100
    assert value["url"] == "/i/5" and len(value["s"]) == 12 and value["c"] == ["red"]
    for bad in ("{{ nope }}", "{{ $randomNumber(1) }}", "{{ $uuid() }}"):
        with pytest.raises(ScriptError):
            render(bad, {}, rng)


def test_a_constant_phase_is_evenly_spaced():
    assert phase_arrivals(Phase("p", 2, rate=4)) == [k / 4 for k in range(8)]
    assert phase_arrivals(Phase("c", 10, count=4)) == [0, 2.5, 5, 7.5]
    assert phase_arrivals(Phase("pause", 5, pause=True)) == []


def test_a_ramp_matches_the_analytic_count():
    ramp = Phase("ramp", 20, rate=5, ramp_to=50)
    times = phase_arrivals(ramp)
    assert len(times) == int((5 + 50) / 2 * 20)  # 550

    def expected(t):  # arrivals due by t: the integral of the rate
        return 5 * t + (50 - 5) * t * t / (2 * 20)

    for t in (1, 5, 10, 15, 19.5, 20):
        due = sum(1 for x in times if x < t)
        assert abs(due - expected(t)) <= 1, (t, due, expected(t))
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= 20
    down = phase_arrivals(Phase("down", 10, rate=20, ramp_to=0))
    assert len(down) == 100 and down == sorted(down)


def test_phases_follow_each_other():
    script = load_script(LOAD / "http.yml")
    schedule = arrivals(script.phases)
    by_phase = [sum(1 for _, i in schedule if i == p) for p in range(4)]
    assert by_phase == [50, 550, 0, 25]
    third = [t for t, i in schedule if i == 3]
    assert third[0] == 35.0  # after 10 s, 20 s and a 5 s pause
