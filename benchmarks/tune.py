"""`warmstart tune`'s own cost: how much of a tuning run is not the function running.

    .venv/bin/python benchmarks/tune.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/tune.py --quick    # a smoke run (tests use it)

Tunes two handlers of tests/apps/basic over Power Tuning's default memory sizes (128, 256, 512,
1024, 1536, 3008 MB) with --num 10, sequentially: a CPU-bound one (cpu.handler) and an I/O-bound
one (sleeper.handler, 50 ms). The machinery's share is (wall time - the sum of the function's
own Duration + Init Duration) / wall time; the target is <= 10%. Then the I/O-bound one again
with --parallel, against its slowest memory size (the target: about that long). In the same run,
the model mode's prediction against the measured curve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "basic"
sys.path.insert(0, str(ROOT / "src"))

from warmstart import FunctionSpec, Runtime  # noqa: E402
from warmstart.tune import DEFAULT_POWER_VALUES, TuneOptions, tune  # noqa: E402

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def run(handler: str, payload: Any, num: int, state: Path, **options: Any) -> dict[str, Any]:
    spec = FunctionSpec("F", handler, APP, runtime=PY, timeout=120)
    with Runtime([spec], state_dir=state) as rt:
        opts = TuneOptions(memory=DEFAULT_POWER_VALUES, num=num, payloads=[(payload, 1)], **options)
        result = tune(rt, "F", opts)
    doc = result.as_dict()
    function_s = sum(r.function_s for r in result.results)
    return {
        "handler": handler,
        "options": {k: v for k, v in options.items()},
        "wall_s": round(result.wall_s, 3),
        "function_s": round(function_s, 3),
        "machinery_share": round((result.wall_s - function_s) / result.wall_s, 4),
        "slowest_size_wall_s": round(max(r.wall_s for r in result.results), 3),
        "curve_ms": {s["value"]: round(s["averageDuration"], 2) for s in doc["stats"]},
        "isolation": result.isolation,  # cgroup-v1, cgroup-v2 or none
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    num = 2 if args.quick else 10
    cpu = {"n": 100_000 if args.quick else 1_000_000}  # ~100 ms of CPU at one vCPU
    io = {"seconds": 0.01 if args.quick else 0.05}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cpu_run = run("cpu.handler", cpu, num, state)
        io_run = run("sleeper.handler", io, num, state)
        parallel = run("sleeper.handler", io, num, state, parallel=True)
        model_cpu = run("cpu.handler", cpu, num, state, mode="model")
        model_io = run("sleeper.handler", io, num, state, mode="model")
    sequential = [cpu_run, io_run]

    def model_error(model: dict[str, Any], measured: dict[str, Any]) -> dict[str, float]:
        return {
            str(size): round(model["curve_ms"][size] / ms - 1, 3)
            for size, ms in measured["curve_ms"].items()
        }

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "num": num,
        "sequential": sequential,
        "parallel": parallel,
        "parallel_vs_slowest_size": round(parallel["wall_s"] / parallel["slowest_size_wall_s"], 2),
        "parallel_vs_sequential": round(parallel["wall_s"] / io_run["wall_s"], 2),
        "model_vs_measured": {
            "cpu.handler": model_error(model_cpu, cpu_run),
            "sleeper.handler": model_error(model_io, io_run),
        },
        "model_wall_s": {"cpu.handler": model_cpu["wall_s"], "sleeper.handler": model_io["wall_s"]},
        "targets": {
            "machinery_share<=0.10": all(r["machinery_share"] <= 0.10 for r in sequential),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
