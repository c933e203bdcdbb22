"""Prometheus metrics of a running engine, per function.

Counters and the duration histogram are fed by the records writer (one record per invocation,
off the invoke path); the gauges (invocations in flight, environments, provisioned environments)
are read from the engine when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from . import record as r

if TYPE_CHECKING:
    from ..engine.service import Service

__all__ = ["Metrics"]

DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)


class _Live(Collector):
    """What is running now, read from the engine at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "warmstart_concurrent_executions", "Invocations in flight", labels=["function"]
        )
        envs = GaugeMetricFamily(
            "warmstart_environments", "Execution environments", labels=["function", "state"]
        )
        provisioned = GaugeMetricFamily(
            "warmstart_provisioned_environments",
            "Provisioned environments allocated",
            labels=["function"],
        )
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


class Metrics:
    """The metrics of one engine. `observe` takes records; `render` gives the exposition text.

    Example: m = Metrics(service); service.writer.observers.append(m.observe); m.render()
    """

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.invocations = Counter(
            "warmstart_invocations", "Invocations", ["function", "start_kind"], registry=reg
        )
        self.errors = Counter(
            "warmstart_errors",
            "Function and runtime errors",
            ["function", "error_type"],
            registry=reg,
        )
        self.throttles = Counter(
            "warmstart_throttles", "Throttled invocations", ["function", "reason"], registry=reg
        )
        self.cold_starts = Counter(
            "warmstart_cold_starts", "Cold starts", ["function"], registry=reg
        )
        self.duration = Histogram(
            "warmstart_duration_seconds",
            "Duration (the REPORT line's)",
            ["function"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.init_duration = Histogram(
            "warmstart_init_duration_seconds",
            "Init Duration of cold starts",
            ["function"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        reg.register(_Live(service))

    def observe(self, rec: tuple[Any, ...]) -> None:
        """Count one invocation record (see observe/record.py)."""
        fn = rec[r.FUNCTION]
        kind = rec[r.START_KIND]
        if kind == "throttled":
            self.throttles.labels(fn, rec[r.ERROR_TYPE]).inc()
            return
        self.invocations.labels(fn, kind).inc()
        if kind == "cold":
            self.cold_starts.labels(fn).inc()
            if rec[r.INIT_MS] is not None:
                self.init_duration.labels(fn).observe(rec[r.INIT_MS] / 1000)
        if rec[r.ERROR_TYPE]:
            self.errors.labels(fn, rec[r.ERROR_TYPE]).inc()
        if rec[r.DURATION_MS] is not None:
            self.duration.labels(fn).observe(rec[r.DURATION_MS] / 1000)

    def render(self) -> tuple[bytes, str]:
        """(exposition text, content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
