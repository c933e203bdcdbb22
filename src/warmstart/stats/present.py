"""The table `warmstart stats` prints."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_stats"]


def _ms(spread: dict[str, float] | None, key: str) -> str:
    if not spread:
        return ""
    v = spread[key]
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def print_stats(console: Console, doc: dict[str, Any]) -> None:
    if not doc["functions"]:
        console.print("[dim]no invocations recorded[/]")
        _print_unwritten(console, doc)
        return
    table = Table(box=None, padding=(0, 1))
    for col in ("function", "invoked", "errors", "thr", "cold%", "p50 ms", "p95", "p99", "max",
                "init p50", "conc", "cost $"):  # fmt: skip
        table.add_column(col, justify="left" if col == "function" else "right",
                         no_wrap=col == "function")  # fmt: skip
    rows = list(doc["functions"].items())
    if len(rows) > 1:
        rows.append(("[bold]all[/]", doc["all"]))
    for name, s in rows:
        d, i = s["duration_ms"], s["init_ms"]
        table.add_row(
            name, f"{s['invocations']:,}", f"{s['errors']:,}", f"{s['throttles']:,}",
            f"{s['cold_start_pct']:.1f}", _ms(d, "p50"), _ms(d, "p95"), _ms(d, "p99"),
            _ms(d, "max"), _ms(i, "p50"), str(s["max_concurrency"]), f"{s['cost']['total']:.4g}",
        )  # fmt: skip
    # Never cut numbers short: a narrow terminal wraps the line instead.
    width = console.width
    console.width = max(width, 110)
    try:
        console.print(table)
    finally:
        console.width = width
    errors = [
        f"{name} {kind} x{n}"
        for name, s in doc["functions"].items()
        for kind, n in s["errors_by_type"].items()
    ]
    if errors:
        console.print("errors: " + ", ".join(errors))
    console.print("[dim]thr: throttles; conc: maximum concurrency; percentiles within 0.55% "
                  "(histograms); cost at first-tier prices, --json for GB-seconds[/]")  # fmt: skip
    _print_unwritten(console, doc)


def _print_unwritten(console: Console, doc: dict[str, Any]) -> None:
    for u in doc["unwritten"]:
        first, last = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(u[k]))
                       for k in ("first", "last"))  # fmt: skip
        if last[:10] == first[:10]:
            last = last[11:]
        console.print(
            f"[yellow]{u['records']:,} records of {u['function']} started between {first} and "
            f"{last} could not be written ({u['reason']}): they are missing above[/]",
            markup=True, highlight=False, soft_wrap=True,
        )  # fmt: skip
