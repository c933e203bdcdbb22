"""Two tuning runs side by side: the before and after of an optimization."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .runner import TuneError

__all__ = ["compare", "load_run"]


def load_run(path: Path) -> dict[str, Any]:
    """A `warmstart tune --json` file (or Power Tuning's output: `stats` is what is read)."""
    try:
        doc = json.loads(path.read_text())
        stats = doc["stats"]
        if not isinstance(stats, list):
            raise TypeError("stats is not a list")
    except OSError as e:
        raise TuneError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise TuneError(f"{path} is not a tuning result: {e}") from None
    return dict(doc)


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Per memory size in both runs: durations, costs and the change in % (negative: less).

    Example: compare(load_run(Path("before.json")), load_run(Path("after.json")))
    """
    b = {s["value"]: s for s in before["stats"]}
    a = {s["value"]: s for s in after["stats"]}
    common = sorted(set(a) & set(b))
    if not common:
        raise TuneError("the two runs have no memory size in common")
    rows = []
    for m in common:
        d0, d1 = b[m]["averageDuration"], a[m]["averageDuration"]
        c0, c1 = b[m]["averagePrice"], a[m]["averagePrice"]
        rows.append({
            "value": m,
            "durationBefore": d0,
            "durationAfter": d1,
            "durationChangePct": round((d1 / d0 - 1) * 100, 2) if d0 else None,
            "priceBefore": c0,
            "priceAfter": c1,
            "priceChangePct": round((c1 / c0 - 1) * 100, 2) if c0 else None,
        })  # fmt: skip
    return rows
