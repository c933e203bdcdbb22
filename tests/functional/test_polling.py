"""Environments poll for their next event only while a core is free for them."""

from __future__ import annotations

import time

from conftest import cpu_seconds, spec


def test_an_environment_polls_for_its_next_event_only_with_a_core_to_spare(make_runtime):
    # One vCPU (below it, environments never poll), and a budget long enough to measure.
    rt = make_runtime(spec("Noop", "noop.handler", memory_size=1769), env_spin_us=300_000)
    spent = {}
    for callers in (0, 100):  # 100: `serve` has a hundred connections open
        rt.service.callers = lambda n=callers: n
        rt.invoke("Noop", {})
        rt.invoke("Noop", {})  # events back to back: the environment would poll after this one
        (env,) = rt.environments()
        before = cpu_seconds(env["pid"])
        time.sleep(0.5)
        spent[callers] = cpu_seconds(env["pid"]) - before
    assert spent[0] >= 0.1, spent  # polled (most of 300 ms), then slept
    assert spent[100] <= 0.03, spent  # slept at once
