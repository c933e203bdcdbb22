"""The tables `warmstart bench` prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["print_cold", "print_warm"]


def _stats_table(title: str, rows: list[tuple[str, dict[str, float]]], unit: str) -> Table:
    table = Table(title=title, box=None, padding=(0, 1))
    for col in ("", f"p50 {unit}", "p90", "p99", "max", "mean"):
        table.add_column(col, justify="left" if not col else "right")
    for name, s in rows:
        table.add_row(name, *(f"{s[k]:.3f}" for k in ("p50", "p90", "p99", "max", "mean")))
    return table


def print_cold(console: Console, doc: dict[str, Any]) -> None:
    restores = doc["start_kind"] == "restore"
    console.print(_stats_table(
        f"{doc['function']}: {doc['n']} cold starts" + (", SnapStart restores" if restores else ""),
        [("cold start (invoke to result)", doc["cold_start_ms"]),
         ("Restore Duration" if restores else "Init Duration", doc["init_duration_ms"]),
         ("first invocation's Duration", doc["first_invocation_duration_ms"])],
        "ms",
    ))  # fmt: skip
    console.print(f"max memory used: {doc['max_memory_used_mb']} MB")
    if doc["failed"]:
        kinds = ", ".join(f"{k} ({n})" for k, n in doc["errors"].items())
        console.print(
            f"[red]{doc['failed']} of {doc['n']} failed[/]: {escape(kinds)}; the first: "
            f"{escape(doc['first'])} (not in the figures above)"
        )
    if restores:
        console.print("[dim]INIT ran once, in the snapshot (its log: warmstart logs)[/]")
    elif not doc["top_imports"]:
        console.print("[dim]no imports were timed during INIT[/]")
        return
    table = Table(title="Where INIT goes: imports by package (mean per cold start)", box=None,
                  padding=(0, 1))  # fmt: skip
    for col in ("package", "ms", "of INIT", "modules", ""):
        table.add_column(col, justify="left" if col in ("package", "") else "right")
    for p in doc["top_imports"]:
        bar = "█" * max(1, round(p["share_of_init"] * 40))
        table.add_row(p["package"], f"{p['ms']:.1f}", f"{p['share_of_init']:.0%}",
                      str(p["modules"]), f"[cyan]{bar}[/]")  # fmt: skip
    console.print(table)
    if doc.get("init_not_importing_ms") is not None:
        console.print(
            f"[dim]not importing: {doc['init_not_importing_ms']:.1f} ms (the handler module's "
            "own code, the runtime's start-up)[/]"
        )


def print_warm(console: Console, doc: dict[str, Any]) -> None:
    console.print(_stats_table(
        f"{doc['function']}: {doc['n']} warm invocations",
        [("latency (caller to result)", doc["latency_ms"]),
         ("handler Duration", doc["duration_ms"]),
         ("warmstart's overhead", doc["overhead_ms"])],
        "ms",
    ))  # fmt: skip
    console.print(f"warmstart's share of the latency: {doc['overhead_share']:.1%}")
