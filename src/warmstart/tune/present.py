"""The tables `warmstart tune` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_compare", "print_result"]


def print_result(console: Console, doc: dict[str, Any]) -> None:
    """One row per memory size, the picks marked, then the recommendation."""
    picks: dict[int, list[str]] = {}
    for strategy, value in (doc.get("picks") or {}).items():
        picks.setdefault(value, []).append(strategy)
    title = f"{doc['function']}: {doc['mode']}"
    if not doc["cpuThrottling"]:
        title += " [yellow](CPU not throttled)[/]"
    table = Table(title=title, box=None, padding=(0, 1))
    for col in ("MB", "avg ms", "p50", "p90", "p99", "$/1M", "cold", "init", "thr", "errors",
                "pick"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("errors", "pick") else "right")
    for m in doc["memory"]:
        errors = ", ".join(f"{k} x{v}" for k, v in m["errors"].items())
        init = sum(m["initDurations"]) / len(m["initDurations"]) if m["initDurations"] else None
        cells = [str(m["value"])]
        if "averageDuration" in m and not m["failed"]:
            cells += [f"{m['averageDuration']:.1f}", f"{m['p50']:.1f}", f"{m['p90']:.1f}",
                      f"{m['p99']:.1f}", f"{m['averagePrice'] * 1e6:.3f}"]  # fmt: skip
        else:
            cells += ["[red]failed[/]", "", "", "", ""]
        cells += [
            str(m["coldStarts"]),
            "" if init is None else f"{init:.1f}",
            "yes" if m["cpuThrottled"] else "no",
            f"[red]{errors}[/]" if errors else "",
            ", ".join(picks.get(m["value"], [])),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print("[dim]avg: trimmed mean of Duration + Init; $/1M: duration cost per million "
                  "invocations; thr: CPU throttled[/]")  # fmt: skip
    console.print(f"[bold]{doc['recommendation']}[/]")


def print_compare(console: Console, rows: list[dict[str, Any]], files: tuple[Path, Path]) -> None:
    table = Table(title=f"{files[0].name} -> {files[1].name}", box=None, padding=(0, 1))
    for col in ("MB", "ms before", "ms after", "speed", "$/1M before", "$/1M after", "cost"):
        table.add_column(col, justify="right")

    def change(pct: float | None, less: str, more: str) -> str:
        if pct is None:
            return ""
        colour = "green" if pct <= 0 else "red"
        return f"[{colour}]{abs(pct):.1f}% {less if pct <= 0 else more}[/]"

    for r in rows:
        table.add_row(
            str(r["value"]),
            f"{r['durationBefore']:.2f}",
            f"{r['durationAfter']:.2f}",
            change(r["durationChangePct"], "faster", "slower"),
            f"{r['priceBefore'] * 1e6:.4f}",
            f"{r['priceAfter'] * 1e6:.4f}",
            change(r["priceChangePct"], "cheaper", "dearer"),
        )
    console.print(table)
