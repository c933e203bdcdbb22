"""`warmstart bench`: forced cold starts and warm invocations of one function, measured."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from ..api import Runtime
from ..errors import WarmstartError
from ..tune.stats import percentile
from .importtime import init_imports, top_packages

__all__ = ["BenchError", "bench_cold", "bench_warm", "summary"]


class BenchError(WarmstartError):
    """The function cannot be benchmarked as asked (say why)."""


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    """p50, p90, p99, max and mean of the values (nearest rank).

    Example: summary([1.0, 2.0, 3.0]) -> {"p50": 2.0, "p90": 3.0, ...}
    """
    out = {f"p{p}": round(percentile(values, p), digits) for p in (50, 90, 99)}
    mean = statistics.fmean(values)
    return out | {"max": round(max(values), digits), "mean": round(mean, digits)}


def _check(res: Any, what: str) -> None:
    if res.function_error:
        raise BenchError(
            f"the {what} invocation failed with {res.error_type}: fix the function or the payload "
            f"(its log: warmstart logs {res.function_name})"
        )


class _Failures:
    """Invocations that failed, by error type, and the first one's message: counted and reported
    with the rest of a run rather than ending it."""

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        self.first = ""

    def add(self, res: Any) -> None:
        kind = res.error_type or "Unhandled"
        self.by_type[kind] = self.by_type.get(kind, 0) + 1
        if not self.first:
            message = res.payload.get("errorMessage", "") if isinstance(res.payload, dict) else ""
            self.first = f"{kind}: {message}" if message else kind

    def none_worked(self, function: str, what: str) -> BenchError:
        return BenchError(
            f"every {what} failed ({self.first}): fix the function or the payload "
            f"(its log: warmstart logs {function})"
        )

    def doc(self) -> dict[str, Any]:
        return {"failed": sum(self.by_type.values()), "errors": self.by_type, "first": self.first}


def bench_cold(
    rt: Runtime,
    function: str,
    n: int = 20,
    qualifier: str | None = None,
    payload: Any = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """N cold starts, each in a new environment: latency, Init Duration, and what INIT imports.

    With `Runtime(..., import_time=True)` the INIT logs carry `-X importtime` lines, collapsed
    here to the costliest packages.

    Example: bench_cold(Runtime.from_template("template.yaml", import_time=True), "Hello", 10)
    """
    latency, init, first, memory, imports = [], [], [], [], []
    failures = _Failures()
    kind = "cold"
    for i in range(n):
        rt.recycle(function, qualifier)
        started = time.perf_counter()
        res = rt.invoke(function, payload, qualifier)
        elapsed = (time.perf_counter() - started) * 1000
        if progress is not None:
            progress(i + 1)
        if res.start_kind not in ("cold", "restore"):
            raise BenchError(f"invocation {i + 1} was not a cold start ({res.start_kind})")
        kind = res.start_kind
        if res.function_error:  # counted and reported with the others, not the end of the run
            failures.add(res)
            continue
        report = res.report
        latency.append(elapsed)
        init.append(report.init_duration_ms or report.restore_duration_ms or 0.0)
        first.append(report.duration_ms)
        memory.append(report.max_memory_used_mb)
        imports.append(init_imports(res.log))
    if not latency:
        raise failures.none_worked(function, "cold start")
    packages = top_packages(imports, limit=None)
    init_mean = statistics.fmean(init)
    for p in packages:
        p["share_of_init"] = round(p["ms"] / init_mean, 3) if init_mean else 0.0
    imported = sum(p["ms"] for p in packages)
    return {
        "function": function,
        "qualifier": qualifier,
        "n": n,
        "start_kind": kind,
        **failures.doc(),
        "cold_start_ms": summary(latency),
        "init_duration_ms": summary(init),
        "first_invocation_duration_ms": summary(first),
        "max_memory_used_mb": max(memory),
        "import_time_available": any(imports),
        "top_imports": packages[:15],
        # INIT not spent importing: the handler module's own code (clients, connections, data)
        # and the runtime's start-up.
        "init_not_importing_ms": round(max(0.0, init_mean - imported), 2) if any(imports) else None,
    }


def bench_warm(
    rt: Runtime,
    function: str,
    n: int = 1000,
    qualifier: str | None = None,
    payload: Any = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """N warm invocations: latency (caller to result) against the handler's own Duration.

    Example: bench_warm(Runtime.from_template("template.yaml"), "Hello", 1000)["overhead_share"]
    """
    _check(rt.invoke(function, payload, qualifier), "first")  # the cold start, not counted
    latency, duration, overhead = [], [], []
    clock = time.perf_counter_ns
    for i in range(n):
        t = clock()
        res = rt.invoke(function, payload, qualifier)
        elapsed = (clock() - t) / 1e6
        _check(res, "warm")
        if res.start_kind not in ("warm", "provisioned"):
            raise BenchError(f"invocation {i + 1} was not warm ({res.start_kind})")
        latency.append(elapsed)
        duration.append(res.report.duration_ms)
        overhead.append(max(0.0, elapsed - res.report.duration_ms))
        if progress is not None and (i + 1) % 100 == 0:
            progress(i + 1)
    total = sum(latency)
    return {
        "function": function,
        "qualifier": qualifier,
        "n": n,
        "latency_ms": summary(latency, 4),
        "duration_ms": summary(duration, 4),
        "overhead_ms": summary(overhead, 4),
        # warmstart's share of the caller's time: everything but the handler's Duration
        "overhead_share": round(sum(overhead) / total, 4) if total else 0.0,
    }
