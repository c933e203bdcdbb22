"""What `warmstart load` shows: the live line, the summary, the HTML report."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .runner import Second
from .script import ScriptError

__all__ = ["live_line", "print_summary", "write_report"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} ms"


def live_line(s: Second) -> str:
    """One line per second of the test: what completed in it."""
    d = s.as_dict()
    return (
        f"{d['t']:>4}s  {d['requests']:>6,}/s  p50 {_ms(d['p50_ms']):>10}  "
        f"p99 {_ms(d['p99_ms']):>10}  errors {d['errors']}  throttles {d['throttles']}  "
        f"cold {d['cold_starts']}  envs {d['environments']}"
    )


def print_summary(doc: dict[str, Any], out: Console) -> None:
    """The end-of-run report: per phase and overall."""
    table = Table(title="Phases", title_justify="left")
    for col in ("phase", "seconds", "target/s", "achieved/s", "requests", "p50", "p95", "p99",
                "max"):  # fmt: skip
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in doc["phases"]:
        lat = p["latency_ms"] or {}
        table.add_row(
            p["name"], f"{p['duration_s']:g}", f"{p['target_rps']:,.1f}",
            f"{p['achieved_rps']:,.1f}", f"{p['requests']:,}",
            *(_ms(lat.get(k)) for k in ("p50", "p95", "p99", "max")),
        )  # fmt: skip
    out.print(table)
    lat = doc["latency_ms"] or {}
    out.print(
        f"requests {doc['requests']:,}  ({doc['achieved_rps']:,.1f}/s of {doc['target_rps']:,.1f}"
        f"/s)  latency p50 {_ms(lat.get('p50'))}  p95 {_ms(lat.get('p95'))}  "
        f"p99 {_ms(lat.get('p99'))}  max {_ms(lat.get('max'))}"
    )
    errors = ", ".join(f"{k} x{v}" for k, v in doc["errors_by_type"].items()) or "none"
    out.print(f"errors {doc['errors']:,} ({errors})  throttles {doc['throttles']:,}")
    init = doc["init_duration_ms"]
    init_text = f"  Init Duration p50 {_ms(init['p50'])} max {_ms(init['max'])}" if init else ""
    out.print(
        f"cold starts {doc['cold_starts']:,}{init_text}  "
        f"peak environments {doc['peak_environments']:,}"
    )
    first = doc["first_error_at_s"]
    out.print(
        f"highest rate before errors: {doc['max_rps_before_errors']:,}/s"
        + (f" (first error or throttle in second {first})" if first is not None else
           " (no errors)")
    )  # fmt: skip
    late = doc["scheduler_lateness_ms"]
    if late:
        out.print(
            f"[dim]scheduler lateness (arrival start after its due time): p50 "
            f"{_ms(late['p50'])}, p99 {_ms(late['p99'])}, max {_ms(late['max'])}[/]"
        )


def _figures(doc: dict[str, Any]) -> list[str]:
    from ..plotting import inline_svg, pyplot

    plt = pyplot()
    tl = doc["timeline"]
    t = [s["t"] for s in tl]
    panels = [
        ("requests completed per second", [("completed/s", [s["requests"] for s in tl])]),
        ("latency (ms)", [("p50", [s["p50_ms"] for s in tl]), ("p99", [s["p99_ms"] for s in tl])]),
        ("cold starts and errors per second", [
            ("cold starts", [s["cold_starts"] for s in tl]),
            ("errors", [s["errors"] for s in tl]),
            ("throttles", [s["throttles"] for s in tl]),
        ]),
        ("environments", [("environments", [s["environments"] for s in tl])]),
    ]  # fmt: skip
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), dpi=110, sharex=True)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for label, ys in series:
            ax.plot(t, [float("nan") if y is None else y for y in ys], label=label)
        ax.set_title(title, fontsize=10, loc="left")
        if len(series) > 1:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("seconds into the test")
    fig.tight_layout()
    figures = [inline_svg(fig)]
    buckets = doc["latency_histogram"]
    if buckets:
        fig, ax = plt.subplots(figsize=(8, 3), dpi=110)
        ax.bar(range(len(buckets)), [b["count"] for b in buckets], color="#5c6bc0")
        ax.set_xticks(range(len(buckets)), [f"≤{b['le_ms']:g}" for b in buckets], rotation=45,
                      fontsize=8)  # fmt: skip
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("requests")
        ax.set_title("Latency histogram", fontsize=10, loc="left")
        fig.tight_layout()
        figures.append(inline_svg(fig))
    return figures


def write_report(doc: dict[str, Any], path: Path, title: str) -> None:
    """A self-contained HTML page (inline SVG, works offline): timelines and the histogram.

    Example: write_report(summary, Path("load.html"), "load.yml against Hello")
    """
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(p['name'])}</td><td>{p['duration_s']:g}</td><td>{p['target_rps']:,.1f}</td>"
        f"<td>{p['achieved_rps']:,.1f}</td><td>{p['requests']:,}</td>"
        + "".join(f"<td>{_ms((p['latency_ms'] or {}).get(k))}</td>" for k in ("p50", "p95", "p99"))
        + "</tr>"
        for p in doc["phases"]
    )
    lat = doc["latency_ms"] or {}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>warmstart load: {e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
</style></head><body>
<h1>Load test: {e(title)}</h1>
<p>{doc["requests"]:,} requests, {doc["achieved_rps"]:,.1f}/s of {doc["target_rps"]:,.1f}/s;
latency p50 {_ms(lat.get("p50"))}, p95 {_ms(lat.get("p95"))}, p99 {_ms(lat.get("p99"))},
max {_ms(lat.get("max"))}; {doc["errors"]:,} errors, {doc["throttles"]:,} throttles,
{doc["cold_starts"]:,} cold starts, at most {doc["peak_environments"]:,} environments;
highest rate before errors {doc["max_rps_before_errors"]:,}/s.</p>
<table><tr><th>phase</th><th>seconds</th><th>target/s</th><th>achieved/s</th><th>requests</th>
<th>p50</th><th>p95</th><th>p99</th></tr>{rows}</table>
{"".join(_figures(doc))}
</body></html>
"""
    try:
        path.write_text(page)
    except OSError as err:
        raise ScriptError(f"cannot write {path}: {err.strerror}") from None
