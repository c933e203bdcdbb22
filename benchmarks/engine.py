"""The execution engine's speed and memory, against python-lambda-local in the same run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/engine.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/engine.py --quick    # a smoke run (tests use it)

Prints one JSON document: warm invoke latency (caller to result, through the Python API),
cold start latency (new environment, invoke to result), idle environment memory, the raw pipe
round trip between two Python processes (the floor), and the same work done by
python-lambda-local's `call()` (a process forked per invocation), with ratios.

The machine is shared and noisy: each figure is the median over several rounds, and every
round's value is printed too.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "tests" / "apps" / "basic"
EVENT = {"k": "v"}

sys.path.insert(0, str(ROOT / "src"))
from warmstart import FunctionSpec, Runtime  # noqa: E402

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    n = len(s)
    return {
        "p50_us": round(s[n // 2] / 1e3, 1),
        "p90_us": round(s[int(n * 0.9)] / 1e3, 1),
        "p99_us": round(s[min(n - 1, int(n * 0.99))] / 1e3, 1),
        "max_us": round(s[-1] / 1e3, 1),
    }


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rounds), 1) for k in rounds[0]}


def warm_invoke(memory: int, rounds: int, n: int, state: Path) -> dict[str, Any]:
    spec = FunctionSpec("Hello", "noop.handler", HELLO, runtime=PY, memory_size=memory)
    with Runtime([spec], state_dir=state) as rt:
        for _ in range(2000):  # steady state: caches, allocator and the records writer warmed up
            rt.invoke("Hello", EVENT)
        clock = time.perf_counter_ns
        invoke = rt.invoke
        out = []
        for _ in range(rounds):
            samples = []
            for _ in range(n):
                t = clock()
                invoke("Hello", EVENT).payload  # noqa: B018 - the caller gets the decoded result
                samples.append(clock() - t)
            out.append(percentiles(samples))
        rt.flush()
        isolation = rt.isolation
    return {"memory_mb": memory, "isolation": isolation, **median_of(out), "rounds": out}


def cold_start(n: int, state: Path) -> dict[str, Any]:
    spec = FunctionSpec("Hello", "noop.handler", HELLO, runtime=PY, memory_size=1769)
    with Runtime([spec], state_dir=state) as rt:
        rt.invoke("Hello", EVENT)
        latency, init = [], []
        for _ in range(n):
            rt.recycle("Hello")
            t = time.perf_counter_ns()
            res = rt.invoke("Hello", EVENT)
            latency.append(time.perf_counter_ns() - t)
            assert res.start_kind == "cold"
            init.append(res.report.init_duration_ms)
    p = percentiles(latency)
    return {
        "p50_ms": round(p["p50_us"] / 1e3, 2),
        "p90_ms": round(p["p90_us"] / 1e3, 2),
        "init_duration_p50_ms": round(statistics.median(init), 2),
        "n": n,
    }


def _rss_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB."""
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def idle_memory(count: int, state: Path) -> dict[str, Any]:
    import asyncio

    spec = FunctionSpec("Hello", "sleeper.handler", HELLO, runtime=PY, memory_size=128)
    with Runtime([spec], state_dir=state) as rt:

        async def at_once() -> None:
            await asyncio.gather(*(rt.ainvoke("Hello", {"seconds": 0.2}) for _ in range(count)))

        asyncio.run(at_once())
        pids = [e["pid"] for e in rt.environments()]
        sizes = [_rss_kb(p) for p in pids]
    rss = [s[0] / 1024 for s in sizes]
    pss = [s[1] / 1024 for s in sizes]
    return {
        "environments": len(pids),
        "rss_mb_median": round(statistics.median(rss), 1),
        "rss_mb_max": round(max(rss), 1),
        "pss_mb_median": round(statistics.median(pss), 1),
    }


PIPE_CHILD = r"""
import os, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
while True:
    b = os.read(r, 65536)
    if not b:
        break
    os.write(w, b)
"""


def pipe_round_trip(n: int) -> dict[str, Any]:
    """Two Python processes echoing a small frame over two pipes: both sides block."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", PIPE_CHILD, str(r1), str(w2)], pass_fds=(r1, w2)
    )
    os.close(r1)
    os.close(w2)
    msg = b"x" * 64
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        os.write(w1, msg)
        os.read(r2, 65536)
        samples.append(time.perf_counter_ns() - t)
    os.close(w1)
    child.wait()
    os.close(r2)
    return percentiles(samples)


def lambda_local(n: int) -> dict[str, Any]:
    """python-lambda-local's call(): the same hello-world handler, a process forked per call."""
    sys.path.insert(0, str(HELLO))
    import noop  # type: ignore[import-not-found]
    from lambda_local.context import Context  # type: ignore[import-untyped]
    from lambda_local.main import call  # type: ignore[import-untyped]

    logging.getLogger().setLevel(logging.WARNING)  # it logs START/END/REPORT at INFO
    samples = []
    for i in range(n):
        t = time.perf_counter_ns()
        result, error = call(noop.handler, EVENT, Context(3, aws_request_id=str(i)))
        samples.append(time.perf_counter_ns() - t)
        assert error is None and result == {"hello": "world"}
    p = percentiles(samples)
    return {
        "p50_ms": round(p["p50_us"] / 1e3, 2),
        "p99_ms": round(p["p99_us"] / 1e3, 2),
        # its per-call process is a fork of this one: that is the memory each invocation needs
        "child_max_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    rounds, n, cold_n, base_n = (2, 300, 10, 10) if args.quick else (11, 4000, 50, 100)
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        floor = pipe_round_trip(n)
        warm = warm_invoke(1769, rounds, n, state)
        floor_after = pipe_round_trip(n)
        warm_128 = warm_invoke(128, rounds, n, state)
        cold = cold_start(cold_n, state)
        idle = idle_memory(10 if args.quick else 50, state)
    try:
        base: dict[str, Any] | None = lambda_local(base_n)
    except ImportError:
        base = None  # pip install -e '.[bench]'
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "pipe_round_trip_floor": floor,
        "pipe_round_trip_floor_after": floor_after,
        # The same raw round trip before and after the warm rounds: far apart, the machine's
        # speed changed during the run and its figures are not comparable with other runs'.
        "machine_steady": abs(floor_after["p50_us"] / floor["p50_us"] - 1) < 0.25,
        "warm_invoke": warm,
        "warm_invoke_128mb": warm_128,
        "cold_start": cold,
        "idle_environment_memory": idle,
        "python_lambda_local": base,
        "targets": {
            "warm_p50_us<=60": warm["p50_us"] <= 60,
            "warm_p99_us<=250": warm["p99_us"] <= 250,
            "cold_p50_ms<=25": cold["p50_ms"] <= 25,
            "idle_rss_mb<=20": idle["rss_mb_max"] <= 20,
        },
    }
    result["ratios"] = {
        "warm_invoke_vs_blocking_pipe_round_trip": round(warm["p50_us"] / floor["p50_us"], 2)
    }
    if base:
        result["ratios"] |= {
            "warm_invoke_vs_lambda_local": round(base["p50_ms"] * 1000 / warm["p50_us"], 1),
            "cold_start_vs_lambda_local": round(base["p50_ms"] / cold["p50_ms"], 2),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
