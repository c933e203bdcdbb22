"""Lambda's prices and cost model: `estimate(Workload(...))`, and `warmstart cost` on top.

Example:
    from warmstart.pricing import Workload, estimate
    estimate(Workload(memory_mb=128, duration_ms=11722, invocations=1000)).total  # ~0.0246
"""

from .model import (
    ARCHITECTURES,
    HOURS_PER_MONTH,
    Estimate,
    PriceTable,
    PricingError,
    RegionPrices,
    Workload,
    default_prices,
    estimate,
    invocation_cost,
    load_prices,
)

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
