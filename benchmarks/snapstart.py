"""SnapStart restores against normal cold starts of the same function, and their memory.

    .venv/bin/python benchmarks/snapstart.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/snapstart.py --quick    # fewer starts, 5 environments (tests)

The function imports boto3 and creates an S3 client at INIT (about 280 ms here), at 1,769 MB
(one vCPU). Its alias `live` has SnapStart, `$LATEST` does not: `bench_cold` (what
`warmstart bench cold` runs) measures N forced cold starts of each, invoke to result. The
baseline is the same function's normal cold start, measured in the same run. Memory: N
environments at once of each kind (a handler that sleeps), the sum of their PSS; the restored
ones also carry their snapshot process's.

Targets (issue 7): restore cold start p50 <= 3 ms, and >= 50x faster than a normal cold start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from warmstart import Runtime  # noqa: E402
from warmstart.bench import bench_cold  # noqa: E402
from warmstart.spec import FunctionSpec  # noqa: E402

HANDLER = """
import time
import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": s3.meta.region_name}
"""


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _memory(rt: Runtime, qualifier: str | None, count: int) -> dict[str, Any]:
    """`count` environments at once (each invocation sleeps), and the sum of their PSS."""
    rt.recycle("Boto", qualifier)

    async def at_once() -> list[Any]:
        calls = [rt.ainvoke("Boto", {"sleep": 0.5}, qualifier) for _ in range(count)]
        return list(await asyncio.gather(*calls))

    results = asyncio.run(at_once())
    failed = [r.payload for r in results if r.function_error]
    if failed:
        raise SystemExit(f"{len(failed)} invocations failed, e.g. {failed[0]!r}")
    version = "1" if qualifier else "$LATEST"
    pids = [e["pid"] for e in rt.environments("Boto") if e["version"] == version]
    kb = sum(_pss_kb(p) for p in pids)
    out: dict[str, Any] = {
        "environments": len(pids),
        "start_kinds": sorted({r.start_kind for r in results}),
        "pss_mb_total": round(kb / 1024, 1),
        "pss_mb_per_environment": round(kb / 1024 / max(1, len(pids)), 2),
    }
    if qualifier:  # all at once: one had a spare, the others were forked on demand
        restores = sorted(r.report.restore_duration_ms for r in results)
        out["burst_restore_duration_ms"] = {
            "p50": round(restores[len(restores) // 2], 2),
            "max": round(restores[-1], 2),
        }
        snapshots = [s.pid for s in rt.service.adapter._snapshots if s.alive]
        snap_kb = sum(_pss_kb(p) for p in snapshots)
        out["snapshot_process_pss_mb"] = round(snap_kb / 1024, 1)
        out["pss_mb_total_with_snapshot"] = round((kb + snap_kb) / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 starts and 5 environments")
    args = parser.parse_args()
    n, envs = (5, 5) if args.quick else (30, 50)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "app.py").write_text(HANDLER)
        spec = FunctionSpec(
            "Boto",
            "app.handler",
            code,
            runtime="python3.11",
            memory_size=1769,
            snap_start=True,
            auto_publish_alias="live",
        )
        # 50 INITs of boto3 at once take ~10 s of CPU on two cores: no INIT timeout here.
        state = Path(tmp) / "state"
        with Runtime([spec], state_dir=state, python=sys.executable, init_timeout_s=300) as rt:
            normal = bench_cold(rt, "Boto", n)
            restore = bench_cold(rt, "Boto", n, qualifier="live")
            memory = {"normal": _memory(rt, None, envs), "restored": _memory(rt, "live", envs)}
    restore_p50 = restore["cold_start_ms"]["p50"]
    normal_p50 = normal["cold_start_ms"]["p50"]
    speedup = round(normal_p50 / restore_p50, 1)
    keep = ("start_kind", "cold_start_ms", "init_duration_ms", "max_memory_used_mb")
    print(
        json.dumps(
            {
                "n": n,
                "normal_cold_start": {k: normal[k] for k in keep},
                "restore": {k: restore[k] for k in keep},
                "memory": memory,
                "ratios": {"normal_cold_start_p50_over_restore_p50": speedup},
                "targets": {"restore_p50_ms<=3": restore_p50 <= 3, "speedup>=50": speedup >= 50},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
