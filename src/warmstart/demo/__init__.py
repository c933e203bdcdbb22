"""`warmstart demo`: the example app in ./app, invoked step by step with its REPORT lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..api import Runtime
from ..config import Config
from ..engine.result import InvokeResult
from ..errors import TooManyRequestsError

__all__ = ["APP_DIR", "run_demo"]

APP_DIR = Path(__file__).parent / "app"


def _report(console: Console, res: InvokeResult) -> None:
    console.print(f"  [dim]{res.report.line().rstrip()}[/]", markup=True)


def run_demo(config: Config, err: Console, out: Console) -> int:
    """Run the demo; returns 0 when every step behaved as Lambda would, else 1."""
    # The demo runs on this Python whatever its runtime says, so it shows no interpreter warning.
    config = config.replace(python=config.python or sys.executable)
    checks: list[tuple[str, bool]] = []
    out.print(
        f"[bold]warmstart demo[/]: the app in [cyan]{APP_DIR / 'template.yaml'}[/]", markup=True
    )
    with Runtime.from_template(APP_DIR / "template.yaml", config=config) as rt:
        out.print(f"[dim]{rt.isolation}[/]", markup=True)

        out.print(
            "\n[bold]1. Cold start[/]: the first invocation starts an environment (INIT)",
            markup=True,
        )
        res = rt.invoke("Hello", {"name": "demo"})
        out.print(f"  -> {json.dumps(res.payload)}")
        _report(out, res)
        checks.append(
            (
                "cold start has Init Duration",
                res.start_kind == "cold" and res.report.init_duration_ms is not None,
            )
        )

        out.print(
            "\n[bold]2. Warm starts[/]: the same environment is reused, globals and all",
            markup=True,
        )
        for _ in range(3):
            res = rt.invoke("Hello", {"name": "demo"})
            _report(out, res)
        checks.append(
            (
                "warm starts reuse the environment",
                res.start_kind == "warm" and res.report.init_duration_ms is None,
            )
        )

        out.print(
            "\n[bold]3. A handler that raises[/]: the error comes back as Lambda shapes it",
            markup=True,
        )
        res = rt.invoke("Fails", {})
        out.print(f"  FunctionError: {res.function_error}")
        out.print(f"  -> {json.dumps({k: v for k, v in res.payload.items() if k != 'stackTrace'})}")
        _report(out, res)
        checks.append(
            (
                "errors are Unhandled with errorType",
                res.function_error == "Unhandled" and res.error_type == "ValueError",
            )
        )

        out.print(
            "\n[bold]4. Throttling[/]: Paused has ReservedConcurrentExecutions: 0", markup=True
        )
        try:
            rt.invoke("Paused", {})
            checks.append(("reserved concurrency 0 throttles", False))
        except TooManyRequestsError as e:
            out.print(f"  TooManyRequestsError: {e.reason}")
            checks.append(
                (
                    "reserved concurrency 0 throttles",
                    e.reason == "ReservedFunctionConcurrentInvocationLimitExceeded",
                )
            )

        out.print(
            "\n[bold]5. Provisioned concurrency[/]: alias `live` was initialized at start-up",
            markup=True,
        )
        res = rt.invoke("Hello", {"name": "live"}, qualifier="live")
        out.print(f"  -> {json.dumps(res.payload)}")
        _report(out, res)
        checks.append(
            (
                "the provisioned alias has no cold start",
                res.start_kind == "provisioned" and res.report.init_duration_ms is None,
            )
        )

        out.print(
            "\n[bold]6. CPU scales with memory[/]: Crunch at 1024 MB, then at 128 MB", markup=True
        )
        table = Table(show_edge=False, box=None, padding=(0, 2))
        for col in ("memory", "vCPU share", "duration", "billed"):
            table.add_column(col, justify="right")
        durations = {}
        for memory in (1024, 128):
            rt.configure("Crunch", memory_size=memory)
            rt.invoke("Crunch", {"n": 10})  # the cold start, not measured
            res = rt.invoke("Crunch", {"n": 1_000_000})
            durations[memory] = res.report.duration_ms
            table.add_row(
                f"{memory} MB",
                f"{memory / 1769:.2f}",
                f"{res.report.duration_ms:.1f} ms",
                f"{res.report.billed_duration_ms} ms",
            )
        out.print(table)
        ratio = durations[128] / durations[1024]
        throttled = rt.service.isolation.cpu_throttled(128)
        if throttled:
            out.print(f"  128 MB took {ratio:.1f}x as long (Lambda: 8x for CPU-bound work)")
            checks.append(("CPU is throttled at 128 MB", ratio > 3))
        else:
            out.print(
                "  [yellow]CPU is not throttled on this machine (no cgroup access)[/]", markup=True
            )
        rt.flush()

    out.print()
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        out.print(f"  {'[green]ok[/]' if ok else '[red]FAILED[/]'}  {name}", markup=True)
    out.print(
        f"\nLogs: [cyan]warmstart logs Hello --state-dir {config.state_dir}[/]   "
        f"Records: [cyan]{config.state_dir / 'warmstart.db'}[/]",
        markup=True,
    )
    return 1 if failed else 0
