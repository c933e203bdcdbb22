"""Prometheus metrics of a running engine, per function.

Counters and histograms are kept in plain dictionaries fed by the records writer (one record per
invocation, off the invoke path; a labelled prometheus_client metric costs several times more
per update) and turned into metric families when scraped, together with the gauges read from
the engine at that moment (invocations in flight, environments, provisioned environments,
records not written yet). prometheus_client writes the exposition format.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from . import record as r

if TYPE_CHECKING:
    from ..engine.service import Service

__all__ = ["DURATION_BUCKETS", "Metrics"]

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0, 30.0, 60.0, 300.0, 900.0)  # fmt: skip


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*DURATION_BUCKETS, float("inf")), self.buckets, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class Metrics(Collector):
    """The metrics of one engine. `observe` takes records; `render` gives the exposition text.

    Example: m = Metrics(service); service.writer.observers.append(m.observe); m.render()
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self.invocations: dict[tuple[str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.throttles: dict[tuple[str, str], int] = {}
        self.duration: dict[str, _Histogram] = {}
        self.init_duration: dict[str, _Histogram] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def observe(self, rec: tuple[Any, ...]) -> None:
        """Count one invocation record (see observe/record.py)."""
        fn = rec[r.FUNCTION]
        kind = rec[r.START_KIND]
        with self._lock:
            if kind == "throttled":
                key = (fn, rec[r.ERROR_TYPE])
                self.throttles[key] = self.throttles.get(key, 0) + 1
                return
            key = (fn, kind)
            self.invocations[key] = self.invocations.get(key, 0) + 1
            if rec[r.ERROR_TYPE]:
                key = (fn, rec[r.ERROR_TYPE])
                self.errors[key] = self.errors.get(key, 0) + 1
            if rec[r.DURATION_MS] is not None:
                self.duration.setdefault(fn, _Histogram()).observe(rec[r.DURATION_MS] / 1000)
            if rec[r.INIT_MS] is not None:
                self.init_duration.setdefault(fn, _Histogram()).observe(rec[r.INIT_MS] / 1000)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            families: list[Any] = []
            for name, doc, labels, data in (
                (
                    "warmstart_invocations",
                    "Invocations",
                    ["function", "start_kind"],
                    self.invocations,
                ),
                (
                    "warmstart_errors",
                    "Function and runtime errors",
                    ["function", "error_type"],
                    self.errors,
                ),
                (
                    "warmstart_throttles",
                    "Throttled invocations",
                    ["function", "reason"],
                    self.throttles,
                ),
            ):
                family = CounterMetricFamily(name, doc, labels=labels)
                for key, value in sorted(data.items()):
                    family.add_metric(list(key), value)
                families.append(family)
            cold = CounterMetricFamily("warmstart_cold_starts", "Cold starts", labels=["function"])
            for (fn, kind), value in sorted(self.invocations.items()):
                if kind == "cold":
                    cold.add_metric([fn], value)
            families.append(cold)
            for hname, hdoc, hdata in (
                ("warmstart_duration_seconds", "Duration (the REPORT line's)", self.duration),
                (
                    "warmstart_init_duration_seconds",
                    "Init Duration of cold starts",
                    self.init_duration,
                ),
            ):
                hist = HistogramMetricFamily(hname, hdoc, labels=["function"])
                for function, h in sorted(hdata.items()):
                    hist.add_metric([function], h.cumulative(), h.sum)
                families.append(hist)
        yield from families
        yield from self._live()

    def _live(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """What is running now, read from the engine at scrape time."""
        in_flight = GaugeMetricFamily(
            "warmstart_concurrent_executions", "Invocations in flight", labels=["function"]
        )
        envs = GaugeMetricFamily(
            "warmstart_environments", "Execution environments", labels=["function", "state"]
        )
        provisioned = GaugeMetricFamily(
            "warmstart_provisioned_environments", "Provisioned environments allocated",
            labels=["function"],
        )  # fmt: skip
        counts: dict[tuple[str, str], int] = {}
        busy_provisioned: dict[str, int] = {}
        for env in self.service.environments():
            key = (env["function"], env["state"])
            counts[key] = counts.get(key, 0) + 1
            if env["state"] == "busy" and env["init_type"] == "provisioned-concurrency":
                busy_provisioned[env["function"]] = busy_provisioned.get(env["function"], 0) + 1
        for name, fn in list(self.service.functions.items()):
            in_flight.add_metric([name], fn.on_demand + busy_provisioned.get(name, 0))
            provisioned.add_metric([name], fn.provisioned)
            for state in ("idle", "busy"):
                envs.add_metric([name, state], counts.get((name, state), 0))
        yield in_flight
        yield envs
        yield provisioned
        writer = self.service.writer
        yield GaugeMetricFamily(
            "warmstart_records_pending", "Invocation records not written to the database yet",
            value=writer.pending(),
        )  # fmt: skip
        yield CounterMetricFamily(
            "warmstart_records_dropped",
            "Invocation records that could not be written (past the memory kept while the disk "
            "was full, or at exit)", value=writer.dropped,
        )  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        """(exposition text, content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
