"""Charts of a tuning run: duration and cost against memory, distributions, cold starts.

`save_chart` writes the main chart as PNG or SVG (for CI artifacts and READMEs); `write_report`
writes one self-contained HTML page (inline SVG, no script, no CDN: it works offline).
matplotlib is imported only here, and only when a chart is asked for.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..plotting import inline_svg, pyplot
from .runner import TuneError

__all__ = ["save_chart", "write_report"]

PICK_COLOURS = {"cost": "#2e7d32", "speed": "#1565c0", "balanced": "#ef6c00"}


def _main_figure(doc: dict[str, Any]) -> Any:
    plt = pyplot()
    stats = doc["stats"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if not stats:
        ax.text(0.5, 0.5, "every memory size failed", ha="center", va="center")
        ax.set_axis_off()
        return fig
    labels = [str(s["value"]) for s in stats]
    x = list(range(len(stats)))
    durations = [s["averageDuration"] for s in stats]
    prices = [s["averagePrice"] * 1e6 for s in stats]  # per million invocations
    ax.plot(x, durations, "o-", color="#5c6bc0", label="duration (ms)")
    ax.set_xlabel("memory (MB)")
    ax.set_ylabel("average duration (ms)", color="#5c6bc0")
    ax.set_xticks(x, labels)
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(x, prices, "s--", color="#c62828", label="cost ($ per 1M invocations)")
    ax2.set_ylabel("cost per 1M invocations ($)", color="#c62828")
    ax2.set_ylim(bottom=0)
    for k, (strategy, value) in enumerate((doc.get("picks") or {}).items()):
        i = labels.index(str(value))
        colour = PICK_COLOURS[strategy]
        # Rings of growing size, so that picks at the same memory size all show.
        ax.plot([i], [durations[i]], "o", ms=12 + 6 * k, mfc="none", mec=colour, mew=2)
        last = i == len(labels) - 1
        ax.annotate(
            {"cost": "cheapest", "speed": "fastest", "balanced": "balanced"}[strategy],
            (i, durations[i]), textcoords="offset points",
            xytext=(-10 if last else 10, 10 + 12 * k), ha="right" if last else "left",
            color=colour, fontsize=9, fontweight="bold",
        )  # fmt: skip
    failed = [m["value"] for m in doc["memory"] if m["failed"]]
    title = f"{doc['function']}: {doc['strategy']} picks {doc['power']} MB"
    if doc.get("mode") == "model":
        title += " (predicted)"
    if failed:
        title += f"; failed: {', '.join(map(str, failed))} MB"
    ax.set_title(title)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="upper center", fontsize=8)
    fig.tight_layout()
    return fig


def save_chart(doc: dict[str, Any], path: Path) -> None:
    """The main chart (duration and cost against memory, picks marked) as .png or .svg.

    Example: save_chart(result.as_dict(), Path("tuning.png"))
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise TuneError(f"--chart {path}: use a .png or .svg file name")
    fig = _main_figure(doc)
    try:
        fig.savefig(path, format=suffix[1:])
    except OSError as e:
        raise TuneError(f"cannot write {path}: {e.strerror}") from None
    finally:
        pyplot().close(fig)


def _distribution_figure(doc: dict[str, Any]) -> Any:
    plt = pyplot()
    rows = [m for m in doc["memory"] if m.get("durations")]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    if rows:
        ax.boxplot([m["durations"] for m in rows], showfliers=True)
        ax.set_xticks(range(1, len(rows) + 1), [str(m["value"]) for m in rows])
    ax.set_xlabel("memory (MB)")
    ax.set_ylabel("duration (ms)")
    ax.set_title("Every invocation's duration (Duration + Init + Restore)")
    fig.tight_layout()
    return fig


def _cold_figure(doc: dict[str, Any]) -> Any:
    plt = pyplot()
    rows = doc["memory"]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    x = list(range(len(rows)))
    inits = [sum(m["initDurations"]) / len(m["initDurations"]) if m["initDurations"] else 0
             for m in rows]  # fmt: skip
    ax.bar(x, inits, color="#8d6e63")
    for i, m in enumerate(rows):
        ax.annotate(f"{m['coldStarts']} cold", (i, inits[i]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(m["value"]) for m in rows])
    ax.set_xlabel("memory (MB)")
    ax.set_ylabel("mean Init Duration (ms)")
    ax.set_title("Cold starts")
    fig.tight_layout()
    return fig


def write_report(doc: dict[str, Any], path: Path) -> None:
    """A self-contained HTML page: the charts, the recommendation and the numbers.

    Example: write_report(result.as_dict(), Path("tuning.html"))
    """
    e = html.escape
    rows = []
    for m in doc["memory"]:
        if m["failed"] or "averageDuration" not in m:
            errors = ", ".join(f"{k} x{v}" for k, v in m["errors"].items())
            rows.append(f"<tr class=failed><td>{m['value']}</td><td colspan=6>failed: "
                        f"{e(errors)}</td><td>{m['coldStarts']}</td></tr>")  # fmt: skip
            continue
        rows.append(
            f"<tr><td>{m['value']}</td><td>{m['averageDuration']:.2f}</td><td>{m['p50']:.2f}</td>"
            f"<td>{m['p90']:.2f}</td><td>{m['p99']:.2f}</td>"
            f"<td>{m['averagePrice'] * 1e6:.4f}</td>"
            f"<td>{'yes' if m['cpuThrottled'] else 'no'}</td><td>{m['coldStarts']}</td></tr>"
        )
    mode = "predicted from one profiled run (model mode)" if doc.get("mode") == "model" else (
        "measured" + ("" if doc.get("cpuThrottling") else ", without CPU throttling")
    )  # fmt: skip
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>warmstart tune: {e(doc["function"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
tr.failed td {{ color: #b71c1c; }}
.rec {{ font-size: 1.1em; background: #f1f8e9; padding: 0.8em; border-radius: 6px; }}
</style></head><body>
<h1>Power tuning of {e(doc["function"])}</h1>
<p class=rec>{e(doc["recommendation"])}</p>
<p>Strategy {e(doc["strategy"])}; {e(mode)}; architecture {e(doc["architecture"])};
{doc["wallSeconds"]} s of wall time.</p>
{inline_svg(_main_figure(doc))}
<table><tr><th>MB</th><th>average ms</th><th>p50</th><th>p90</th><th>p99</th>
<th>$ / 1M invocations</th><th>CPU throttled</th><th>cold starts</th></tr>
{"".join(rows)}</table>
{inline_svg(_distribution_figure(doc))}
{inline_svg(_cold_figure(doc))}
</body></html>
"""
    try:
        path.write_text(page)
    except OSError as err:
        raise TuneError(f"cannot write {path}: {err.strerror}") from None
