"""Power tuning: run a function at several memory sizes, price each, pick one.

Example:
    from warmstart import Runtime
    from warmstart.tune import TuneOptions, tune
    with Runtime.from_template("template.yaml") as rt:
        print(tune(rt, "Hello", TuneOptions(memory=[128, 1024], num=5)).as_dict()["power"])
"""

from .runner import (
    ALL_POWER_VALUES,
    DEFAULT_POWER_VALUES,
    MemoryResult,
    TuneError,
    TuneOptions,
    TuneResult,
    load_callable,
    parse_memory,
    tune,
)
from .stats import STRATEGIES, choose, percentile, trimmed_mean

__all__ = [
    "ALL_POWER_VALUES",
    "DEFAULT_POWER_VALUES",
    "STRATEGIES",
    "MemoryResult",
    "TuneError",
    "TuneOptions",
    "TuneResult",
    "choose",
    "load_callable",
    "parse_memory",
    "percentile",
    "trimmed_mean",
    "tune",
]
