"""Lambda's cost model: what a workload costs, from the price table in prices.json.

The prices are data (prices.json, with the date they were taken): updating them, or adding a
region with other prices, needs no code change. Billing rules follow LAMBDA_FACTS: duration
rounded up to 1 ms, INIT billed for on-demand cold starts (ceil(Duration + Init Duration)),
monthly tiers over the account's GB-seconds, provisioned concurrency billed for the time it is
allocated plus a lower duration price, ephemeral storage above 512 MB, SnapStart's cache and
restores.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import WarmstartError
from ..observe.report import billed_ms

__all__ = [
    "ARCHITECTURES",
    "HOURS_PER_MONTH",
    "Estimate",
    "PriceTable",
    "PricingError",
    "RegionPrices",
    "Workload",
    "default_prices",
    "estimate",
    "invocation_cost",
    "load_prices",
]

ARCHITECTURES = ("x86_64", "arm64")
HOURS_PER_MONTH = 730  # AWS's pricing examples count a month as 730 hours
FREE_STORAGE_MB = 512
PRICES = Path(__file__).with_name("prices.json")


class PricingError(WarmstartError):
    """A price table that cannot be read, or a workload that cannot be priced."""


@dataclass(frozen=True)
class RegionPrices:
    """One region's prices, in the table's currency."""

    # per architecture: [(GB-seconds in this tier, or None for the rest, price per GB-s)]
    duration: dict[str, list[tuple[float | None, float]]]
    request_per_million: float
    provisioned_allocated: dict[str, float]  # per GB-s allocated
    provisioned_duration: dict[str, float]  # per GB-s of invocations on provisioned environments
    ephemeral_storage: float  # per GB-s above 512 MB
    snapstart_cache: float  # per GB-s cached
    snapstart_restore_per_gb: float
    free_requests: int
    free_gb_seconds: float

    def first_tier(self, architecture: str) -> float:
        return self.duration[architecture][0][1]


@dataclass(frozen=True)
class PriceTable:
    taken: str  # the date the prices were read
    source: str
    currency: str
    regions: dict[str, RegionPrices]

    def region(self, name: str) -> RegionPrices:
        try:
            return self.regions[name]
        except KeyError:
            known = ", ".join(sorted(self.regions))
            raise PricingError(
                f"no prices for region {name!r} (the table has: {known}); add it to the table"
            ) from None


def load_prices(path: Path | None = None) -> PriceTable:
    """The price table (the bundled one by default).

    Example: load_prices().region("us-east-1").request_per_million -> 0.2
    """
    path = path or PRICES
    try:
        doc = json.loads(path.read_text())
        regions = {
            name: RegionPrices(
                duration={
                    arch: [(None if size is None else float(size), float(p)) for size, p in tiers]
                    for arch, tiers in r["duration"].items()
                },
                request_per_million=float(r["request_per_million"]),
                provisioned_allocated=dict(r["provisioned_allocated"]),
                provisioned_duration=dict(r["provisioned_duration"]),
                ephemeral_storage=float(r["ephemeral_storage"]),
                snapstart_cache=float(r["snapstart_cache"]),
                snapstart_restore_per_gb=float(r["snapstart_restore_per_gb"]),
                free_requests=int(r["free_tier"]["requests"]),
                free_gb_seconds=float(r["free_tier"]["gb_seconds"]),
            )
            for name, r in doc["regions"].items()
        }
        return PriceTable(str(doc["taken"]), str(doc["source"]), str(doc["currency"]), regions)
    except OSError as e:
        raise PricingError(f"cannot read the price table {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PricingError(f"the price table {path} is malformed: {e!r}") from None


def invocation_cost(
    memory_mb: int,
    billed_duration_ms: float,
    architecture: str = "x86_64",
    region: str = "us-east-1",
) -> float:
    """Duration cost of one invocation at the first tier, without the request fee (Power Tuning's
    per-invocation cost).

    Example: invocation_cost(1024, 1465) -> 2.4417e-05
    """
    prices = default_prices().region(region)
    _check_architecture(architecture, prices)
    return billed_duration_ms / 1000 * memory_mb / 1024 * prices.first_tier(architecture)


@dataclass(frozen=True)
class Workload:
    """What to price: `invocations` of one function, a batch or (monthly=True) a month of them.

    `init_ms` with `cold_start_rate` (the share of invocations that start an environment,
    1 by default) bills INIT on those; with `snapstart`, cold starts are restores instead
    (`restore_ms`). `provisioned` environments are allocated for `hours` (a month by default)
    and run every invocation (no INIT billed; spillover is not modelled).
    """

    memory_mb: int
    duration_ms: float
    invocations: int = 1
    monthly: bool = False
    init_ms: float | None = None
    cold_start_rate: float | None = None
    architecture: str = "x86_64"
    provisioned: int = 0
    hours: float = HOURS_PER_MONTH
    ephemeral_storage_mb: int = FREE_STORAGE_MB
    free_tier: bool = False
    snapstart: bool = False
    restore_ms: float | None = None
    region: str = "us-east-1"


@dataclass(frozen=True)
class Estimate:
    """The priced workload; every cost in `currency`. `as_dict()` is what `--json` prints."""

    memory_mb: int
    architecture: str
    region: str
    invocations: int
    monthly: bool
    billed_duration_ms: float  # per invocation (an average when only some are cold starts)
    billed_duration_ms_warm: int
    billed_duration_ms_cold: int | None
    cold_starts: int
    gb_seconds: float
    compute_cost: float
    request_cost: float
    provisioned_cost: float
    ephemeral_storage_cost: float
    snapstart_cost: float
    free_tier_gb_seconds: float
    free_tier_requests: int
    total: float
    per_1000_invocations: float
    currency: str
    prices_taken: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(w: Workload, table: PriceTable | None = None) -> Estimate:
    """Price a workload.

    Example: estimate(Workload(128, 11722, invocations=1000)).total -> 0.02462...
    """
    table = table or default_prices()
    prices = table.region(w.region)
    arch = w.architecture
    _validate(w, prices)
    gb = w.memory_mb / 1024
    n = w.invocations
    provisioned = w.provisioned > 0
    started = w.init_ms is not None or (w.snapstart and w.restore_ms is not None)
    rate = (1.0 if w.cold_start_rate is None else w.cold_start_rate) if started else 0.0
    cold = 0 if provisioned else round(n * rate)
    warm_ms = billed_ms(w.duration_ms)
    if w.snapstart:  # a restore is billed on its own line: Billed Restore Duration
        cold_ms = warm_ms + (billed_ms(w.restore_ms) if w.restore_ms else 0)
    else:
        cold_ms = billed_ms(w.duration_ms, w.init_ms)
    total_ms = warm_ms * (n - cold) + cold_ms * cold
    gb_seconds = total_ms / 1000 * gb

    free_gbs, free_requests = 0.0, 0
    if w.free_tier and not provisioned:
        free_gbs = min(gb_seconds, prices.free_gb_seconds)
        free_requests = min(n, prices.free_requests)
    if provisioned:
        compute = gb_seconds * prices.provisioned_duration[arch]
        allocated = w.provisioned * gb * w.hours * 3600 * prices.provisioned_allocated[arch]
    else:
        billable = gb_seconds - free_gbs
        tiers = prices.duration[arch]
        compute = _tiered(billable, tiers) if w.monthly else billable * tiers[0][1]
        allocated = 0.0
    requests = (n - free_requests) * prices.request_per_million / 1e6
    extra_gb = max(0, w.ephemeral_storage_mb - FREE_STORAGE_MB) / 1024
    storage = extra_gb * total_ms / 1000 * prices.ephemeral_storage
    snapstart = 0.0
    if w.snapstart:
        snapstart = cold * gb * prices.snapstart_restore_per_gb
        if w.monthly:  # the snapshot is cached while the version is active: the month
            snapstart += gb * w.hours * 3600 * prices.snapstart_cache
    total = compute + allocated + requests + storage + snapstart
    return Estimate(
        memory_mb=w.memory_mb,
        architecture=arch,
        region=w.region,
        invocations=n,
        monthly=w.monthly,
        billed_duration_ms=round(total_ms / n, 3) if n else float(warm_ms),
        billed_duration_ms_warm=warm_ms,
        billed_duration_ms_cold=cold_ms if started and not provisioned else None,
        cold_starts=cold,
        gb_seconds=gb_seconds,
        compute_cost=compute,
        request_cost=requests,
        provisioned_cost=allocated,
        ephemeral_storage_cost=storage,
        snapstart_cost=snapstart,
        free_tier_gb_seconds=free_gbs,
        free_tier_requests=free_requests,
        total=total,
        per_1000_invocations=total / n * 1000 if n else 0.0,
        currency=table.currency,
        prices_taken=table.taken,
    )


def _tiered(gb_seconds: float, tiers: list[tuple[float | None, float]]) -> float:
    cost, left = 0.0, gb_seconds
    for size, price in tiers:
        part = left if size is None else min(left, size)
        cost += part * price
        left -= part
        if left <= 0:
            break
    return cost


def _validate(w: Workload, prices: RegionPrices) -> None:
    _check_architecture(w.architecture, prices)
    problems = []
    if not 128 <= w.memory_mb <= 10240:
        problems.append(f"memory {w.memory_mb} MB is outside Lambda's 128-10240 MB")
    durations = (("duration", w.duration_ms), ("init", w.init_ms), ("restore", w.restore_ms))
    for name, value in durations:
        if value is not None and (value < 0 or not math.isfinite(value)):
            problems.append(f"{name} must be a duration >= 0 ms")
    if w.invocations < 0:
        problems.append("invocations must be >= 0")
    if w.cold_start_rate is not None and not 0 <= w.cold_start_rate <= 1:
        problems.append("the cold start rate is a share between 0 and 1")
    if w.provisioned < 0 or w.hours < 0:
        problems.append("provisioned environments and hours must be >= 0")
    if not FREE_STORAGE_MB <= w.ephemeral_storage_mb <= 10240:
        problems.append("ephemeral storage is 512-10240 MB")
    if w.snapstart and w.init_ms is not None:
        problems.append("a SnapStart cold start is a restore: give restore_ms, not init_ms")
    if problems:
        raise PricingError("; ".join(problems))


def _check_architecture(architecture: str, prices: RegionPrices) -> None:
    if architecture not in prices.duration:
        raise PricingError(f"architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")


@functools.cache
def default_prices() -> PriceTable:
    """The bundled price table, read once.

    Example: default_prices().region("us-east-1").first_tier("arm64")
    """
    return load_prices()
