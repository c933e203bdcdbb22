"""Power tuning: run a function at several memory sizes, price each, pick one.

Example:
    from warmstart import Runtime
    from warmstart.tune import TuneOptions, tune
    with Runtime.from_template("template.yaml") as rt:
        print(tune(rt, "Hello", TuneOptions(memory=[128, 1024], num=5)).as_dict()["power"])
"""

from .charts import save_chart, write_report
from .compare import compare, load_run
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
from .template import set_memory_size

__all__ = [
    "ALL_POWER_VALUES",
    "DEFAULT_POWER_VALUES",
    "STRATEGIES",
    "MemoryResult",
    "TuneError",
    "TuneOptions",
    "TuneResult",
    "choose",
    "compare",
    "load_callable",
    "load_run",
    "parse_memory",
    "percentile",
    "save_chart",
    "set_memory_size",
    "trimmed_mean",
    "tune",
    "write_report",
]
