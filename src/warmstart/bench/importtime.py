"""Where INIT goes: the `-X importtime` lines of an environment's INIT, by package."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

__all__ = ["init_imports", "top_packages"]

Imports = list[tuple[str, int, int, int]]  # (module, self us, cumulative us, depth)
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def init_imports(log: str) -> Imports:
    """(module, self us, cumulative us, depth) of each import timed before START (in INIT).

    Example: init_imports("import time:   120 |   300 |   json\\nSTART ...") -> [("json", ...)]
    """
    found = []
    for line in log.splitlines():
        if line.startswith("START RequestId:"):
            break
        m = _LINE.match(line)
        if m:
            found.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    return found


def top_packages(runs: Iterable[Imports], limit: int | None = 15) -> list[dict[str, Any]]:
    """The costliest top-level packages: their modules' own import time, averaged over runs.

    Example: top_packages([init_imports(log)]) -> [{"package": "botocore", "ms": 180.2, ...}]
    """
    totals: dict[str, float] = defaultdict(float)
    modules: dict[str, set[str]] = defaultdict(set)
    count = 0
    for imports in runs:
        count += 1
        for module, self_us, _, _ in imports:
            package = module.split(".")[0]
            totals[package] += self_us
            modules[package].add(module)
    if not count:
        return []
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [
        {"package": p, "ms": round(us / count / 1000, 2), "modules": len(modules[p])}
        for p, us in ranked
    ]
