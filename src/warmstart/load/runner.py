"""Running a load test: open-loop arrivals, scenarios, and what they measured.

Every arrival starts at its scheduled time whatever the earlier ones are doing, and its first
request's latency counts from that scheduled time: a slow system makes requests late and the
latency shows it (no coordinated omission). The scheduler's own lateness (how long after its
due time an arrival actually started) is measured too. Latencies go into HDR histograms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from ..api import Runtime
from ..errors import TooManyRequestsError
from ..tune.stats import percentile
from .clock import Clock
from .schedule import arrivals
from .script import Scenario, Script, ScriptError, render

__all__ = ["LoadRun", "Second"]

MAX_US = 3_600_000_000  # an hour, in microseconds: the histograms' range


def _hist() -> HdrHistogram:
    return HdrHistogram(1, MAX_US, 3)


def _ms(h: HdrHistogram) -> dict[str, float] | None:
    if not h.get_total_count():
        return None
    return {
        "p50": round(h.get_value_at_percentile(50) / 1000, 3),
        "p95": round(h.get_value_at_percentile(95) / 1000, 3),
        "p99": round(h.get_value_at_percentile(99) / 1000, 3),
        "max": round(h.get_max_value() / 1000, 3),
    }


def _buckets(h: HdrHistogram) -> list[dict[str, float]]:
    """Latencies in buckets that double from 0.1 ms: the report's histogram."""
    if not h.get_total_count():
        return []
    return [
        {"le_ms": step.value_iterated_to / 1000, "count": step.count_added_in_this_iter_step}
        for step in h.get_log_iterator(100, 2)
    ]


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


@dataclass
class Second:
    """What completed during one second of the test (the live line, the timelines)."""

    t: int
    requests: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    environments: int = 0
    latency: HdrHistogram = field(default_factory=_hist)

    def as_dict(self) -> dict[str, Any]:
        lat = _ms(self.latency)
        return {
            "t": self.t, "requests": self.requests, "errors": self.errors,
            "throttles": self.throttles, "cold_starts": self.cold_starts,
            "environments": self.environments,
            "p50_ms": lat["p50"] if lat else None, "p99_ms": lat["p99"] if lat else None,
        }  # fmt: skip


@dataclass
class _Phase:
    name: str
    duration_s: float
    planned: int
    started: int = 0
    overrun: float = 0.0  # how late its last arrival started: the phase took that much longer
    lateness: HdrHistogram = field(default_factory=_hist)
    requests: int = 0
    latency: HdrHistogram = field(default_factory=_hist)


class LoadRun:
    """One run of a script: against `target` over HTTP, and/or a function of `runtime`.

    Example: asyncio.run(LoadRun(script, runtime=rt, function="Hello").run())
    """

    def __init__(
        self,
        script: Script,
        runtime: Runtime | None = None,
        function: str | None = None,
        on_second: Callable[[Second], None] | None = None,
        seed: int | None = None,
    ) -> None:
        lambdas = any(s.engine == "lambda" for s in script.scenarios)
        if lambdas and (runtime is None or not function):
            raise ScriptError("lambda scenarios need a function to invoke (TARGET, with -t)")
        self.script = script
        self.runtime = runtime
        self.function = function
        self.on_second = on_second
        self.rng = random.Random(seed)
        self.latency = _hist()
        self.lateness = _hist()
        self.errors: Counter[str] = Counter()
        self.throttles = 0
        self.cold_starts = 0
        self.inits: list[float] = []
        self.peak_environments = 0
        self.seconds: list[Second] = []
        self.phases = [_Phase(p.name, p.duration_s, 0) for p in script.phases]
        self._tasks: set[asyncio.Task[None]] = set()
        self._weights = [s.weight for s in script.scenarios]
        self._schedule: list[tuple[float, int]] = []
        self._next = 0  # the index in the schedule of the next arrival
        self._start = 0.0
        self._session: Any = None

    # -- the schedule ------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self._schedule = arrivals(self.script.phases)
        offset = sum(p.duration_s for p in self.script.phases)
        for _, i in self._schedule:
            self.phases[i].planned += 1
        if any(s.engine == "http" for s in self.script.scenarios):
            import aiohttp

            self._session = aiohttp.ClientSession(
                base_url=self.script.target,
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=60),
            )
        # What exists now is not garbage; without this a full collection walks all of it, a
        # pause of milliseconds that would make arrivals late.
        gc.freeze()
        self._finished = loop.create_future()
        cores = os.cpu_count() or 1
        self._clock = Clock(loop, self._fire, lambda: len(self._tasks) < cores)
        service = self.runtime.service if self.runtime is not None else None
        if service is not None:
            # The clock polls through most of a run on a core of its own. Counted as a caller
            # beside the arrivals in flight, it keeps environments from polling for their next
            # event on the other cores: on 2 cores that left no core for a second environment,
            # an INIT or the records thread, and the clock was preempted for whole time slices
            # (docs/benchmarks.md: lateness p99 halved at 1,000/s).
            callers, service.callers = service.callers, lambda: len(self._tasks) + 1
        self._start = loop.time() + 0.05
        ticker = loop.create_task(self._tick())
        try:
            self._clock.arm(self._start + (self._schedule[0][0] if self._schedule else offset))
            await self._finished  # every arrival has started
            await asyncio.sleep(max(0.0, self._start + offset - loop.time()))
            while self._tasks:  # the last arrivals finish their flows
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            ticker.cancel()
            self._clock.close()
            if service is not None:
                service.callers = callers
            gc.unfreeze()
            if self._session is not None:
                await self._session.close()
        if self.seconds:
            self._close_second()
        return self.summary()

    def _fire(self) -> None:
        """Start every arrival that is due, and wake again for the next one."""
        loop = self._clock.loop
        now = loop.time()
        schedule, i = self._schedule, self._next
        while i < len(schedule) and self._start + schedule[i][0] <= now:
            due, phase = schedule[i]
            self._arrive(self._start + due, phase, now)
            i += 1
        self._next = i
        if i < len(schedule):
            self._clock.arm(self._start + schedule[i][0])
        elif not self._finished.done():
            self._finished.set_result(None)

    def _arrive(self, due: float, index: int, now: float) -> None:
        late = max(1, int((now - due) * 1e6))
        phase = self.phases[index]
        self.lateness.record_value(late)
        phase.lateness.record_value(late)
        phase.started += 1
        phase.overrun = now - due
        scenario = self.rng.choices(self.script.scenarios, self._weights)[0]
        task = self._clock.loop.create_task(self._scenario(scenario, due, index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- a virtual user ----------------------------------------------------------------------

    async def _scenario(self, scenario: Scenario, due: float, phase: int) -> None:
        loop = asyncio.get_running_loop()
        variables = {k: self.rng.choice(v) for k, v in self.script.variables.items()}
        since = due  # the first request counts from its scheduled time
        for step in scenario.flow:
            if step.kind == "think":
                await asyncio.sleep(step.spec["seconds"])
                since = loop.time()
                continue
            if step.kind == "unknown":
                continue
            spec = render(step.spec, variables, self.rng)
            error, throttled, cold, init = None, False, False, None
            try:
                if step.kind == "invoke":
                    error, throttled, cold, init = await self._invoke(spec)
                else:
                    error, throttled = await self._http(step.kind, spec)
            except Exception as e:  # a refused connection, a timeout: an error, not a crash
                error = type(e).__name__
            self._done(loop.time(), since, phase, error, throttled, cold, init)
            since = loop.time()

    async def _invoke(self, spec: dict[str, Any]) -> tuple[str | None, bool, bool, float | None]:
        assert self.runtime is not None and self.function is not None
        payload = spec.get("payload", {})
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                pass  # sent as a JSON string, as Artillery's lambda engine does
        try:
            res = await self.runtime.ainvoke(spec.get("target") or self.function, payload)
        except TooManyRequestsError:
            return None, True, False, None
        cold = res.start_kind in ("cold", "restore")
        init = res.report.init_duration_ms or res.report.restore_duration_ms
        return (res.error_type or "Unhandled") if res.function_error else None, False, cold, init

    async def _http(self, method: str, spec: dict[str, Any]) -> tuple[str | None, bool]:
        kwargs: dict[str, Any] = {"headers": spec.get("headers")}
        if "json" in spec:
            kwargs["json"] = spec["json"]
        elif "body" in spec:
            body = spec["body"]
            kwargs["data"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        async with self._session.request(method.upper(), str(spec["url"]), **kwargs) as r:
            await r.read()
            if r.status == 429:
                return None, True
            return (f"HTTP {r.status}" if r.status >= 400 else None), False

    # -- measuring ---------------------------------------------------------------------------

    def _second(self, now: float) -> Second:
        """The current second's counters (closing the seconds that have ended)."""
        t = int(now - self._start)
        while not self.seconds or self.seconds[-1].t < t:
            if self.seconds:
                self._close_second()
            self.seconds.append(Second(self.seconds[-1].t + 1 if self.seconds else 0))
        return self.seconds[-1]

    def _close_second(self) -> None:
        s = self.seconds[-1]
        if self.runtime is not None and self.function is not None:
            s.environments = len(self.runtime.environments(self.function))
            self.peak_environments = max(self.peak_environments, s.environments)
        if self.on_second is not None:
            self.on_second(s)

    async def _tick(self) -> None:
        """Close each second on time, even when nothing completes in it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1 - ((loop.time() - self._start) % 1) + 0.001)
            self._second(loop.time())

    def _done(
        self, now: float, since: float, phase: int, error: str | None, throttled: bool,
        cold: bool, init: float | None,
    ) -> None:  # fmt: skip
        us = max(1, int((now - since) * 1e6))
        second = self._second(now)
        second.requests += 1
        self.phases[phase].requests += 1
        if throttled:
            self.throttles += 1
            second.throttles += 1
            return
        if error:
            self.errors[error] += 1
            second.errors += 1
        if cold:
            self.cold_starts += 1
            second.cold_starts += 1
            if init is not None:
                self.inits.append(init)
        self.latency.record_value(us)
        second.latency.record_value(us)
        self.phases[phase].latency.record_value(us)

    def summary(self) -> dict[str, Any]:
        """The report: per phase and overall (see `--json`)."""
        total_s = sum(p.duration_s for p in self.phases) or 1.0
        overrun = next((p.overrun for p in reversed(self.phases) if p.started), 0.0)
        # The highest one-second rate completed before the first error or throttle.
        first = next((s.t for s in self.seconds if s.errors or s.throttles), None)
        clean = [s.requests for s in self.seconds[:first]]
        phases = [
            {
                "name": p.name,
                "duration_s": p.duration_s,
                "target_rps": _rate(p.planned, p.duration_s),
                "achieved_rps": _rate(p.started, p.duration_s + p.overrun),
                "requests": p.requests,
                "latency_ms": _ms(p.latency),
                "scheduler_lateness_ms": _ms(p.lateness),
            }
            for p in self.phases
        ]
        inits = self.inits
        init_ms = None
        if inits:
            init_ms = {"p50": percentile(inits, 50), "max": max(inits),
                       "mean": sum(inits) / len(inits)}  # fmt: skip
        return {
            "requests": sum(p.requests for p in self.phases),
            "arrivals": sum(p.started for p in self.phases),
            "phases": phases,
            "target_rps": _rate(sum(p.planned for p in self.phases), total_s),
            "achieved_rps": _rate(sum(p.started for p in self.phases), total_s + overrun),
            "latency_ms": _ms(self.latency),
            "errors": sum(self.errors.values()),
            "errors_by_type": dict(self.errors.most_common()),
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "init_duration_ms": init_ms,
            "peak_environments": self.peak_environments,
            "latency_histogram": _buckets(self.latency),
            "scheduler_lateness_ms": _ms(self.lateness),
            "max_rps_before_errors": max(clean) if clean else 0,
            "first_error_at_s": first,
            "timeline": [s.as_dict() for s in self.seconds],
            "unknown_keys": self.script.unknown,
        }
