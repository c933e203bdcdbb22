"""`warmstart tune`: run a function at several memory sizes and pick one, as Power Tuning does.

Each memory size is a published version of the function behind an alias `RAM<size>` (Power
Tuning's own scheme), so it has its own environments and its own CPU share. Durations come from
the REPORT lines: speed from Duration + Init Duration + Restore Duration, cost from Billed
Duration, both averaged with the trimmed mean.
"""

from __future__ import annotations

import importlib
import math
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import Runtime
from ..engine.limits import CPU_PERIOD_US, vcpus_for
from ..engine.result import InvokeResult
from ..errors import WarmstartError
from ..observe.report import billed_ms
from ..pricing import invocation_cost
from .stats import STRATEGIES, choose, percentile, trimmed_mean

__all__ = [
    "ALL_POWER_VALUES",
    "DEFAULT_POWER_VALUES",
    "MODES",
    "MemoryResult",
    "TuneError",
    "TuneOptions",
    "TuneResult",
    "load_callable",
    "parse_memory",
    "tune",
]

DEFAULT_POWER_VALUES = (128, 256, 512, 1024, 1536, 3008)
MODES = ("measured", "model")
PROFILE_MB = 1769  # one whole vCPU: the profiled run of the model mode is not throttled
ALL_POWER_VALUES = tuple(range(128, 3009, 64))


class TuneError(WarmstartError):
    """Options that cannot run, or a run with nothing to recommend."""


def parse_memory(text: str) -> list[int]:
    """`128,256,1024` or `ALL` (128 to 3008 MB in steps of 64, as Power Tuning's ALL).

    Example: parse_memory("128,512") -> [128, 512]
    """
    if text.strip().upper() == "ALL":
        return list(ALL_POWER_VALUES)
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise TuneError(f"--memory {text!r}: give sizes in MB, e.g. 128,512,1024, or ALL") from None
    bad = [v for v in values if not 128 <= v <= 10240]
    if bad or not values:
        raise TuneError(f"--memory: sizes are 128-10240 MB (got {text!r})")
    return values


@dataclass
class TuneOptions:
    """Power Tuning's inputs, with its defaults."""

    memory: Sequence[int] = DEFAULT_POWER_VALUES
    num: int = 10
    payloads: Sequence[tuple[Any, float]] = (({}, 1.0),)  # (payload, weight)
    parallel: bool = False
    strategy: str = "cost"
    balanced_weight: float = 0.5
    discard_top_bottom: float = 0.2
    only_cold_starts: bool = False
    sleep_between_runs_ms: float = 0
    allowed_exceptions: Sequence[str] = ()
    pre_processor: Callable[[Any], Any] | None = None
    post_processor: Callable[[Any, Any], Any] | None = None
    architecture: str | None = None  # the function's own by default
    seed: int | None = None
    mode: str = "measured"  # or "model": one profiled run at full speed, the curve predicted

    def check(self) -> None:
        if self.num < 1:
            raise TuneError("--num must be at least 1")
        if self.strategy not in STRATEGIES:
            raise TuneError(f"--strategy: one of {', '.join(STRATEGIES)}")
        if not 0 <= self.balanced_weight <= 1:
            raise TuneError("--balanced-weight is between 0 and 1")
        if not 0 <= self.discard_top_bottom <= 0.4:
            raise TuneError("--discard-top-bottom is between 0 and 0.4")
        if not self.payloads or any(w <= 0 for _, w in self.payloads):
            raise TuneError("payload weights must be positive")
        if self.mode not in MODES:
            raise TuneError(f"--mode: one of {', '.join(MODES)}")


@dataclass
class MemoryResult:
    """What one memory size did."""

    memory_mb: int
    invocations: int = 0
    durations: list[float] = field(default_factory=list)  # speed: Duration + Init + Restore
    billed: list[int] = field(default_factory=list)
    inits: list[float] = field(default_factory=list)
    cold_starts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    allowed_errors: int = 0
    cpu_throttled: bool = False
    max_memory_used_mb: int = 0
    wall_s: float = 0.0
    function_s: float = 0.0  # sum of the function's own Duration + Init (+ Restore)
    # (Duration, CPU time, Init Duration or None) of each successful invocation (model mode)
    samples: list[tuple[float, float, float | None]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def summary(self, discard: float, architecture: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.memory_mb,
            "invocations": self.invocations,
            "failed": self.failed,
            "errors": dict(self.errors),
            "coldStarts": self.cold_starts,
            "initDurations": [round(v, 2) for v in self.inits],
            "cpuThrottled": self.cpu_throttled,
            "durations": [round(v, 3) for v in self.durations],
            "maxMemoryUsedMB": self.max_memory_used_mb,
            "vcpus": round(vcpus_for(self.memory_mb), 3),
        }
        if self.durations:
            billed = trimmed_mean(self.billed, discard)
            out |= {
                "averageDuration": trimmed_mean(self.durations, discard),
                "averageBilledDuration": billed,
                "averagePrice": invocation_cost(self.memory_mb, billed, architecture),
                "p50": percentile(self.durations, 50),
                "p90": percentile(self.durations, 90),
                "p99": percentile(self.durations, 99),
            }
        return out


@dataclass
class TuneResult:
    function: str
    options: TuneOptions
    architecture: str
    isolation: str
    results: list[MemoryResult]
    wall_s: float
    mode: str = "measured"

    def as_dict(self) -> dict[str, Any]:
        """Power Tuning's output shape (`power`, `cost`, `duration`, `stats`), and more."""
        o = self.options
        summaries = [r.summary(o.discard_top_bottom, self.architecture) for r in self.results]
        ok = [s for s in summaries if not s["failed"] and "averageDuration" in s]
        stats = [
            {"value": s["value"], "averagePrice": s["averagePrice"],
             "averageDuration": s["averageDuration"]}
            for s in ok
        ]  # fmt: skip
        doc: dict[str, Any] = {
            "function": self.function,
            "mode": self.mode,
            "strategy": o.strategy,
            "architecture": self.architecture,
            "isolation": self.isolation,
            "cpuThrottling": self.isolation != "none",
            "stats": stats,
            "memory": summaries,
            "wallSeconds": round(self.wall_s, 3),
            "functionSeconds": round(sum(r.function_s for r in self.results), 3),
        }
        if not ok:
            doc |= {"power": None, "cost": None, "duration": None,
                    "recommendation": "every memory size failed: see memory[].errors"}  # fmt: skip
            return doc
        best = choose(stats, o.strategy, o.balanced_weight)
        doc |= {"power": best["value"], "cost": best["averagePrice"],
                "duration": best["averageDuration"]}  # fmt: skip
        doc["picks"] = {s: choose(stats, s, o.balanced_weight)["value"] for s in STRATEGIES}
        doc["recommendation"] = _recommend(best, stats, o.strategy, summaries)
        return doc


def _recommend(
    best: dict[str, Any],
    stats: list[dict[str, Any]],
    strategy: str,
    summaries: list[dict[str, Any]],
) -> str:
    cheapest = min(stats, key=lambda s: s["averagePrice"])
    fastest = min(stats, key=lambda s: s["averageDuration"])
    line = (
        f"{best['value']} MB ({strategy}): {best['averageDuration']:.1f} ms, "
        f"${best['averagePrice'] * 1e6:.2f} per million invocations (duration)"
    )
    if best is not fastest:
        ratio = best["averageDuration"] / fastest["averageDuration"]
        line += f"; {_times(ratio)} slower than {fastest['value']} MB"
    if best is not cheapest:
        ratio = best["averagePrice"] / cheapest["averagePrice"]
        line += f"; {_times(ratio)} dearer than {cheapest['value']} MB"
    failed = [s["value"] for s in summaries if s["failed"]]
    if failed:
        line += f"; failed at {', '.join(f'{v} MB' for v in failed)}"
    return line


def _times(ratio: float) -> str:
    """1.25 -> '25%', 5.9 -> '5.9x'."""
    return f"{ratio:.1f}x" if ratio >= 2 else f"{ratio - 1:.0%}"


def load_callable(spec: str, search: Sequence[Path] = ()) -> Callable[..., Any]:
    """`module:function` (from the function's code folder or the current one) as a callable.

    Example: load_callable("hooks:before", [Path("src")])
    """
    module, _, name = spec.partition(":")
    if not module or not name:
        raise TuneError(f"{spec!r}: give a processor as module:function")
    added = [str(p) for p in search if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise TuneError(f"cannot load {spec!r}: {e}") from None
    finally:
        for p in added:
            sys.path.remove(p)
    if not callable(obj):
        raise TuneError(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def tune(
    rt: Runtime,
    function: str,
    options: TuneOptions,
    progress: Callable[[int, MemoryResult], None] | None = None,
) -> TuneResult:
    """Run `function` of `rt` at each memory size and collect what Power Tuning would.

    `progress(done_invocations, memory_result)` is called after each invocation.

    Example: tune(Runtime.from_template("template.yaml"), "Hello", TuneOptions(num=5)).as_dict()
    """
    options.check()
    spec = rt.function(function)
    arch = options.architecture or spec.architecture
    if arch != spec.architecture:
        rt.configure(function, architecture=arch)
    model = options.mode == "model"
    sizes = [max(PROFILE_MB, *options.memory)] if model else list(options.memory)
    aliases = []
    for memory in sizes:  # a version and an alias per memory size: RAM128, RAM256...
        rt.configure(function, memory_size=memory)
        version = rt.publish_version(function)
        alias = f"RAM{memory}"
        rt.create_alias(function, alias, version)
        aliases.append((memory, alias))
    results = [MemoryResult(m) for m, _ in aliases]
    rng = random.Random(options.seed)
    lock = threading.Lock()
    done = [0]

    def run_one(result: MemoryResult, alias: str) -> None:
        started = time.perf_counter()
        for i in range(options.num):
            payload = _pick(options.payloads, rng, lock)
            if options.pre_processor is not None:
                changed = _call(options.pre_processor, "pre-processor", payload)
                payload = payload if changed is None else changed
            if options.only_cold_starts:
                rt.recycle(function, alias)
            try:
                res = rt.invoke(function, payload, alias)
            except WarmstartError as e:  # throttled, or the configuration cannot run
                result.errors[type(e).__name__] += 1
                result.invocations += 1
            else:
                _collect(result, res, options.allowed_exceptions)
                if options.post_processor is not None:
                    _call(options.post_processor, "post-processor", payload, res.payload)
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(done[0], result)
            if options.sleep_between_runs_ms and i + 1 < options.num:
                time.sleep(options.sleep_between_runs_ms / 1000)
        result.wall_s = time.perf_counter() - started

    started = time.perf_counter()
    if options.parallel:
        with ThreadPoolExecutor(len(results)) as pool:
            futures = [
                pool.submit(run_one, r, a) for r, (_, a) in zip(results, aliases, strict=True)
            ]
            for f in futures:
                f.result()  # a processor's failure reaches the caller
    else:
        for r, (_, a) in zip(results, aliases, strict=True):
            run_one(r, a)
    wall = time.perf_counter() - started
    if model:
        results = [_predict(results[0], m) for m in options.memory]
    return TuneResult(
        function, options, arch, rt.service.isolation.mode, results, wall, options.mode
    )


def _predict(profile: MemoryResult, memory_mb: int) -> MemoryResult:
    """The profiled run (at one vCPU or more) as it would run at memory_mb.

    Time off the CPU (waiting) stays; time on it stretches as the CPU quota stretches it: a
    quota of share x period per period, so a burst runs at full speed for its first quota and then
    waits for each next period (single-threaded code gains nothing above one vCPU). INIT keeps
    its measured time: Lambda does not hold INIT to the memory share (see limits.INIT_VCPUS).
    """
    share = min(1.0, vcpus_for(memory_mb))
    out = MemoryResult(memory_mb, invocations=profile.invocations, errors=profile.errors.copy())
    out.allowed_errors = profile.allowed_errors
    out.cpu_throttled = share < 1
    out.max_memory_used_mb = profile.max_memory_used_mb
    for duration, cpu, measured_init in profile.samples:
        on_cpu = min(cpu, duration)
        predicted = duration - on_cpu + _throttled(on_cpu, share)
        init = measured_init
        out.durations.append(predicted + (init or 0.0))
        out.billed.append(billed_ms(predicted, init))
        if init is not None:
            out.cold_starts += 1
            out.inits.append(init)
        out.function_s += (predicted + (init or 0.0)) / 1000
    return out


def _call(processor: Callable[..., Any], what: str, *args: Any) -> Any:
    try:
        return processor(*args)
    except Exception as e:
        raise TuneError(f"the {what} failed: {type(e).__name__}: {e}") from e


def _throttled(cpu_ms: float, share: float) -> float:
    """Wall time of cpu_ms of CPU work under a quota of `share` of each CPU period."""
    if share >= 1 or cpu_ms <= 0:
        return cpu_ms
    period = CPU_PERIOD_US / 1000
    quota = max(1.0, period * share)
    waits = math.ceil(cpu_ms / quota) - 1
    return waits * period + cpu_ms - waits * quota


def _pick(payloads: Sequence[tuple[Any, float]], rng: random.Random, lock: threading.Lock) -> Any:
    if len(payloads) == 1:
        return payloads[0][0]
    with lock:
        return rng.choices([p for p, _ in payloads], [w for _, w in payloads])[0]


def _collect(result: MemoryResult, res: InvokeResult, allowed: Sequence[str]) -> None:
    report = res.report
    result.invocations += 1
    speed = report.duration_ms + (report.init_duration_ms or 0) + (report.restore_duration_ms or 0)
    result.function_s += speed / 1000
    result.cpu_throttled = result.cpu_throttled or res.cpu_throttled
    result.max_memory_used_mb = max(result.max_memory_used_mb, report.max_memory_used_mb)
    if report.init_duration_ms is not None or report.restore_duration_ms is not None:
        result.cold_starts += 1
        result.inits.append(report.init_duration_ms or report.restore_duration_ms or 0.0)
    if res.function_error:
        error = res.error_type or "Unhandled"
        if error not in allowed:
            result.errors[error] += 1
            return
        result.allowed_errors += 1
    result.durations.append(speed)
    result.billed.append(report.billed_duration_ms)
    result.samples.append((report.duration_ms, res.cpu_ms, report.init_duration_ms))
