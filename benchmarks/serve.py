"""`warmstart serve`'s Invoke API under wrk, against a bare ASGI server in the same run.

    .venv/bin/python benchmarks/serve.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/serve.py --quick    # a smoke run (tests use it)

Starts a real `warmstart serve` (a no-op function at 1769 MB, one vCPU) and drives its Invoke API
with wrk (Debian's `wrk` package) at several connection counts, wrk sharing the 2-core machine.
Each round also drives the same uvicorn server with an app that answers without doing anything
(the HTTP stack alone: the ceiling for any Python server here) and times the Python API's
`Runtime.invoke` on the same function, so that the HTTP layer's cost is measured in the same run:
`http_overhead_p50_us` = serve's p50 at one connection minus the Python API's p50.
`server_cpu_us` is the server process's CPU time per invocation: the rate moves with the
machine's speed, the CPU a request costs much less.

The machine is shared and noisy: each figure is the median over interleaved rounds, and every
round's value is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "basic"
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
BODY = '{"k": "v"}'
PATH = "/2015-03-31/functions/Noop/invocations"

TEMPLATE = f"""\
Resources:
  Noop:
    Type: AWS::Serverless::Function
    Properties:
      Handler: noop.handler
      Runtime: {PY}
      CodeUri: {APP}
      MemorySize: 1769
"""
WRK_SCRIPT = f"""\
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
# The yardstick: uvicorn with the settings `warmstart serve` uses, answering what Invoke answers.
BARE_APP = """\
import sys, uvicorn

async def app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"x-amz-executed-version", b"$LATEST"),
        (b"x-amzn-requestid", b"00000000-0000-0000-0000-000000000000")]})
    await send({"type": "http.response.body", "body": b'{"hello": "world"}'})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            lifespan="off", log_level="warning", access_log=False, ws="none",
            proxy_headers=False, server_header=False)
"""


class BenchmarkError(Exception):
    """The benchmark cannot run here (say why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"the server exited: {proc.communicate()[0]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchmarkError("the server did not start listening")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise BenchmarkError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and errors from wrk's --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise BenchmarkError(f"unexpected wrk output:\n{out}")
    lat = dict(re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": round(float(rps.group(1))),
        "p50_us": round(_us(lat["50"]), 1),
        "p90_us": round(_us(lat["90"]), 1),
        "p99_us": round(_us(lat["99"]), 1),
        "requests": int(total.group(1)),
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(g) for g in sock.groups()) if sock else 0),
    }


def wrk(wrk_bin: str, port: int, connections: int, seconds: int, script: Path) -> dict[str, Any]:
    p = subprocess.run(
        [wrk_bin, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    if p.returncode != 0:
        raise BenchmarkError(f"wrk failed: {p.stderr or p.stdout}")
    return parse_wrk(p.stdout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_serve(
    wrk_bin: str, pid: int, port: int, connections: int, seconds: int, script: Path
) -> dict[str, Any]:
    """wrk against `serve`, with the server process's CPU time per invocation: the figure the
    machine's drifting speed moves least, since the server is what limits the rate."""
    before = cpu_seconds(pid)
    result = wrk(wrk_bin, port, connections, seconds, script)
    cpu = cpu_seconds(pid) - before
    return result | {"server_cpu_us": round(cpu * 1e6 / max(1, result["requests"]), 1)}


def python_api_p50(state: Path, template: Path, n: int) -> float:
    """The Python API's warm invoke p50 (caller to result) on the same function, in us."""
    sys.path.insert(0, str(ROOT / "src"))
    from warmstart import Runtime

    with Runtime.from_template(template, state_dir=state) as rt:
        for _ in range(500):
            rt.invoke("Noop", BODY)
        clock = time.perf_counter_ns
        samples = []
        for _ in range(n):
            t = clock()
            rt.invoke("Noop", BODY).payload  # noqa: B018 - the caller gets the decoded result
            samples.append(clock() - t)
    samples.sort()
    return round(samples[len(samples) // 2] / 1e3, 1)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in ("rps", "p50_us", "p90_us", "p99_us", "server_cpu_us") if k in runs[0]]
    return {k: round(statistics.median(r[k] for r in runs), 1) for k in keys} | {
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
    }


def count_records(state: Path) -> int:
    import sqlite3

    db = sqlite3.connect(state / "warmstart.db")
    try:
        return int(db.execute("SELECT count(*) FROM invocations").fetchone()[0])
    finally:
        db.close()


def run(rounds: int, seconds: int, connections: list[int], api_n: int) -> dict[str, Any]:
    wrk_bin = shutil.which("wrk")
    if not wrk_bin:
        raise BenchmarkError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        template, script = d / "template.yaml", d / "post.lua"
        template.write_text(TEMPLATE)
        script.write_text(WRK_SCRIPT)
        serve_port, bare_port = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        serve = subprocess.Popen(
            [sys.executable, "-m", "warmstart.cli", "serve", str(template), "--port",
             str(serve_port), "--state-dir", str(d / "serve")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(bare_port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_listening(serve_port, serve)
            wait_listening(bare_port, bare)
            for port in (serve_port, bare_port):  # warm up: environments, caches, the writer
                wrk(wrk_bin, port, max(connections), 1, script)
            runs: dict[str, dict[int, list[dict[str, Any]]]] = {
                "serve": {c: [] for c in connections},
                "bare": {c: [] for c in connections},
            }
            api: list[float] = []
            for _ in range(rounds):
                for c in connections:
                    runs["serve"][c].append(
                        wrk_serve(wrk_bin, serve.pid, serve_port, c, seconds, script)
                    )
                    runs["bare"][c].append(wrk(wrk_bin, bare_port, c, seconds, script))
                api.append(python_api_p50(d / "api", template, api_n))
        finally:
            stop(bare)
            stop(serve)
        records = count_records(d / "serve")
    serve_med = {c: median_of(runs["serve"][c]) for c in connections}
    bare_med = {c: median_of(runs["bare"][c]) for c in connections}
    best = max(connections, key=lambda c: serve_med[c]["rps"])
    api_p50 = round(statistics.median(api), 1)
    overhead = round(serve_med[connections[0]]["p50_us"] - api_p50, 1)
    errors = sum(m["errors"] for m in serve_med.values())
    sent = sum(m["requests"] for m in serve_med.values())
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "seconds_per_run": seconds,
        "serve": {str(c): serve_med[c] | {"rounds": runs["serve"][c]} for c in connections},
        "bare_uvicorn": {str(c): bare_med[c] for c in connections},
        "python_api_invoke_p50_us": api_p50,
        "python_api_rounds_us": api,
        "best": {"connections": best, **serve_med[best]},
        "http_overhead_p50_us": overhead,
        # wrk stops counting when its time is up; the server still answers and records what
        # was in flight, so the records are at least what wrk counted (warm-up included).
        "records_written": records,
        "requests_counted_by_wrk": sent,
        "ratios": {
            f"serve_vs_bare_uvicorn_rps_c{c}": round(serve_med[c]["rps"] / bare_med[c]["rps"], 2)
            for c in connections
        },
        "targets": {
            "rps>=5000": serve_med[best]["rps"] >= 5000,
            "no_errors": errors == 0,
            "http_overhead_p50_us<=200": overhead <= 200,
            "every_request_recorded": records >= sent,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (default 5)")
    parser.add_argument(
        "--connections", default="1,16,64", help="wrk connection counts (default 1,16,64)"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (1 if args.quick else 5)
    connections = [int(c) for c in args.connections.split(",")]
    try:
        result = run(rounds, seconds, connections, 500 if args.quick else 5000)
    except BenchmarkError as e:
        sys.exit(f"serve benchmark: {e}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
