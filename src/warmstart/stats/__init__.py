"""Statistics of the invocation records: `warmstart stats`.

Example:
    from pathlib import Path
    from warmstart.stats import stats
    print(stats(Path(".warmstart"), "Hello")["functions"]["Hello"]["duration_ms"])
"""

from .present import print_stats
from .query import PRECISION, stats

__all__ = ["PRECISION", "print_stats", "stats"]
