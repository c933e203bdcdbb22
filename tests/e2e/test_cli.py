"""The `warmstart` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import APPS, BASIC, EVENTS

WARMSTART = [sys.executable, "-m", "warmstart.cli"]


def run(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 120):
    env = {**os.environ, "WARMSTART_PYTHON": sys.executable}  # the template says python3.11
    return subprocess.run(
        [*WARMSTART, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def project(tmp_path):
    shutil.copytree(APPS / "basic", tmp_path / "basic")
    shutil.copy(APPS / "template.yaml", tmp_path / "template.yaml")
    return tmp_path


def test_invoke_from_the_template(project):
    p = run("invoke", "Echo", "-e", str(EVENTS / "order.json"), cwd=project)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["event"] == json.loads((EVENTS / "order.json").read_text())
    assert "START RequestId: " in p.stderr and "REPORT RequestId: " in p.stderr
    assert "Init Duration: " in p.stderr
    assert json.loads(p.stdout)["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")  # Tracing
    # The records and logs are in ./.warmstart
    logs = run("logs", "Echo", cwd=project)
    assert logs.returncode == 0 and "REPORT RequestId: " in logs.stdout


def test_invoke_several_times_with_json_output(project):
    p = run(
        "invoke",
        "Echo",
        "--event",
        '{"k": 1}',
        "-n",
        "3",
        "--json",
        "--parameter-overrides",
        "Memory=256",
        cwd=project,
    )
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert [x["start_kind"] for x in lines] == ["cold", "warm", "warm"]
    assert lines[0]["report"]["memory_size_mb"] == 256
    assert lines[0]["payload"]["event"] == {"k": 1}


def test_invoke_a_handler_without_a_template(tmp_path):
    p = run(
        "invoke",
        "--handler",
        "echo.handler",
        "--code-dir",
        str(BASIC),
        "--event",
        '{"a": 1}',
        "--memory",
        "512",
        "--env",
        "X=1",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["env"]["X"] == "1" and out["context"]["memory_limit_in_mb"] == "512"


def test_event_from_stdin(project):
    p = run("invoke", "Echo", "-e", "-", cwd=project, stdin='{"from": "stdin"}')
    assert json.loads(p.stdout)["event"] == {"from": "stdin"}


def test_function_errors_and_throttles_exit_1(project):
    p = run("invoke", "Raiser", "--event", '{"id": 1}', cwd=project)
    assert p.returncode == 1
    assert json.loads(p.stdout)["errorType"] == "OrderError"
    assert "[ERROR] OrderError: bad order 1" in p.stderr
    p = run("invoke", "Paused", cwd=project)
    assert p.returncode == 1
    assert "ReservedFunctionConcurrentInvocationLimitExceeded" in p.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["invoke", "Nope"], "Function not found"),
        (["invoke", "Echo", "--event", "{bad"], "the event is not valid JSON"),
        (["invoke", "Echo", "-t", "missing.yaml"], "template missing.yaml does not exist"),
        (["invoke", "Echo", "--parameter-overrides", "Memory=64"], "MemorySize: 64 is outside"),
        (["invoke", "--handler", "app.handler"], "--handler and --code-dir go together"),
        (["invoke"], "which function?"),
        (["logs", "Nope"], "no logs for Nope"),
    ],
)
def test_mistakes_get_one_clear_line_and_exit_2(project, args, message):
    p = run(*args, cwd=project)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def test_broken_template(tmp_path):
    (tmp_path / "template.yaml").write_text("Resources: [\n")
    p = run("invoke", "X", cwd=tmp_path)
    assert p.returncode == 2 and "is not a valid template" in p.stderr
    assert "Traceback" not in p.stderr


def test_help_explains():
    p = subprocess.run([*WARMSTART, "invoke", "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert "Examples:" in p.stdout and "Exit status" in p.stdout


def test_demo(tmp_path):
    p = run("demo", cwd=tmp_path, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    for step in (
        "1. Cold start",
        "2. Warm starts",
        "3. A handler that raises",
        "4. Throttling",
        "5. Provisioned concurrency",
        "6. CPU scales with memory",
    ):
        assert step in p.stdout
    assert "FAILED" not in p.stdout
    assert (tmp_path / ".warmstart" / "warmstart.db").exists()


def test_logs_follow(project):
    run("invoke", "Echo", cwd=project)
    follow = subprocess.Popen(
        [*WARMSTART, "logs", "Echo", "--follow"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run("invoke", "Echo", "--event", '{"marker": "second"}', cwd=project)
        seen = b""
        deadline = time.monotonic() + 20
        fd = follow.stdout.fileno()
        while seen.count(b"REPORT RequestId: ") < 2 and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                seen += os.read(fd, 65536)
        # the first invocation's log, then the new one as it is written
        assert seen.count(b"REPORT RequestId: ") == 2
    finally:
        follow.terminate()
        follow.wait(10)


def test_cost_json(tmp_path):
    p = run("cost", "--memory", "128", "--duration-ms", "11722", "--invocations", "1000",
            "--json", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    for key in ("memory_mb", "architecture", "billed_duration_ms", "invocations", "compute_cost",
                "request_cost", "total"):  # fmt: skip
        assert key in doc, key
    assert round(doc["total"], 4) == 0.0246 and doc["billed_duration_ms"] == 11722
    p = run("cost", "--memory", "128", "--duration-ms", "162.68", "--init-ms", "872.98",
            "--json", cwd=tmp_path)  # fmt: skip
    assert json.loads(p.stdout)["billed_duration_ms"] == 1036


def test_cost_table_and_errors(tmp_path):
    p = run("cost", "--memory", "1024", "--duration-ms", "120", "--per-month", "50000000",
            "--arch", "arm64", "--free-tier", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "a month of 50,000,000 invocation(s) of 1024 MB arm64" in p.stdout
    assert "free tier used" in p.stdout and "total" in p.stdout
    for args, message in (
        (("--memory", "64", "--duration-ms", "1"), "128-10240"),
        (("--memory", "128", "--duration-ms", "1", "--invocations", "1", "--per-month", "1"),
         "not both"),
        (("--memory", "128", "--duration-ms", "1", "--free-tier"), "--per-month"),
    ):  # fmt: skip
        p = run("cost", *args, cwd=tmp_path)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


TUNE_TEMPLATE = """\
# Tuned by warmstart tune --auto-optimize; this comment stays.
Resources:
  Crunch:
    Type: AWS::Serverless::Function
    Properties:
      Handler: cpu.handler   # CPU-bound
      Runtime: python3.11
      CodeUri: basic/
      MemorySize: 128
      Timeout: 60
"""


def test_tune_json_report_chart_and_auto_optimize(project):
    (project / "template.yaml").write_text(TUNE_TEMPLATE)
    p = run("tune", "Crunch", "--memory", "128,1024", "--num", "3", "--payload", '{"n": 100000}',
            "--json", "run.json", "--report", "r.html", "--chart", "c.png", "--auto-optimize",
            cwd=project)  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads((project / "run.json").read_text())
    assert {"power", "cost", "duration", "stats", "memory", "recommendation"} <= set(doc)
    assert [s["value"] for s in doc["stats"]] == [128, 1024]
    assert doc["recommendation"] in p.stdout
    assert (project / "r.html").stat().st_size > 0 and (project / "c.png").stat().st_size > 0
    edited = (project / "template.yaml").read_text()
    assert edited == TUNE_TEMPLATE.replace("MemorySize: 128", f"MemorySize: {doc['power']}")
    # The before/after comparison reads the JSON files back.
    p = run("tune", "--compare", "run.json", "run.json", cwd=project)
    assert p.returncode == 0 and "0.0% faster" in p.stdout


def test_tune_bad_input(project):
    (project / "template.yaml").write_text(TUNE_TEMPLATE)
    for args, message in (
        (("Crunch", "--memory", "64"), "128-10240"),
        (("Crunch", "--payload", "{nope"), "payload is not valid"),
        (("Nope",), "Nope"),
        (("Crunch", "--chart", "c.gif", "--num", "1", "--memory", "1024"), ".png or .svg"),
    ):
        p = run("tune", *args, cwd=project)
        assert p.returncode == 2, (args, p.stderr)
        assert message in p.stderr and "Traceback" not in p.stderr


def test_tune_without_cgroups_warns_and_offers_the_model(project):
    (project / "template.yaml").write_text(TUNE_TEMPLATE)
    p = run("tune", "Crunch", "--memory", "128,1024", "--num", "2", "--isolation", "none",
            "--payload", '{"n": 1000}', cwd=project)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "CPU cannot be throttled" in p.stderr and "--mode model" in p.stderr
    assert "CPU not throttled" in p.stdout


BENCH_TEMPLATE = """\
Resources:
  Imports:
    Type: AWS::Serverless::Function
    Properties:
      Handler: initimports.handler
      Runtime: python3.11
      CodeUri: basic/
"""


def test_bench_cold_and_warm(project):
    (project / "template.yaml").write_text(BENCH_TEMPLATE)
    p = run("bench", "cold", "-n", "2", "--json", "-", cwd=project)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["n"] == 2 and any(i["package"] == "email" for i in doc["top_imports"])
    p = run("bench", "cold", "Imports", "-n", "2", cwd=project)
    assert "Where INIT goes" in p.stdout and "email" in p.stdout
    p = run("bench", "warm", "-n", "50", "--json", "warm.json", cwd=project)
    assert p.returncode == 0, p.stderr
    assert "warmstart's share of the latency" in p.stdout
    assert json.loads((project / "warm.json").read_text())["n"] == 50
    p = run("bench", "warm", "--payload", "{bad", cwd=project)
    assert p.returncode == 2 and "not valid JSON" in p.stderr


SNAP_TEMPLATE = """\
Resources:
  Snap:
    Type: AWS::Serverless::Function
    Properties:
      Handler: snap.handler
      Runtime: python3.11
      CodeUri: basic/
      AutoPublishAlias: live
      SnapStart:
        ApplyOn: PublishedVersions
"""


def test_bench_cold_of_snapstart_restores(project):
    (project / "template.yaml").write_text(SNAP_TEMPLATE)
    p = run("bench", "cold", "Snap", "-n", "3", "--qualifier", "live", "--json", "-", cwd=project)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["start_kind"] == "restore" and doc["init_duration_ms"]["p50"] > 0
    p = run("bench", "cold", "Snap", "-n", "2", "--qualifier", "live", cwd=project)
    assert p.returncode == 0, p.stderr
    assert "SnapStart restores" in p.stdout and "Restore Duration" in p.stdout
    p = run("logs", "Snap", cwd=project)
    assert "INIT_REPORT Init Duration" in p.stdout and "RESTORE_REPORT" in p.stdout


def test_stats_command(project):
    p = run("invoke", "Echo", "-n", "3", "--event", "{}", cwd=project)
    assert p.returncode == 0, p.stderr
    p = run("stats", "--json", cwd=project)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["functions"]["Echo"]["invocations"] == 3
    assert doc["functions"]["Echo"]["cold_starts"] == 1
    p = run("stats", "Echo", "--since", "10m", cwd=project)
    assert p.returncode == 0 and "Echo" in p.stdout and "cold%" in p.stdout
    p = run("stats", "--since", "yesterday", cwd=project)
    assert p.returncode == 2 and "--since" in p.stderr


def test_env_vars_and_env_reach_template_functions(project):
    (project / "env.json").write_text(
        json.dumps({"Parameters": {"STAGE": "file", "TABLE": "local"}, "Echo": {"ONLY": "echo"}})
    )
    p = run("invoke", "Echo", "--env-vars", "env.json", "--env", "STAGE=cli", "--json", cwd=project)
    assert p.returncode == 0, p.stderr
    env = json.loads(p.stdout)["payload"]["env"]
    assert (env["STAGE"], env["TABLE"], env["ONLY"]) == ("cli", "local", "echo")
    assert "variables the template does not declare are added" in p.stderr

    (project / "bad.json").write_text('{"Echo": {"A": [1]}}')
    p = run("invoke", "Echo", "--env-vars", "bad.json", cwd=project)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "bad.json: Echo.A must be text, a number or a boolean" in p.stderr


def test_a_function_not_found_lists_those_there_are(project):
    p = run("invoke", "Nope", cwd=project)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "Function not found: " in p.stderr and "the template has: Echo, Raiser" in p.stderr


def test_samconfig_parameter_overrides_are_read_as_sam_reads_them(project):
    (project / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nparameter_overrides = "Memory=512"\n'
        '[default.local_invoke.parameters]\nparameter_overrides = ["Memory=256"]\n'
    )

    def memory(*extra: str) -> str:
        p = run("invoke", "Echo", "--json", *extra, cwd=project)
        assert p.returncode == 0, p.stderr
        return str(json.loads(p.stdout)["payload"]["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])

    assert memory() == "256"  # the command's own section over global
    assert memory("--parameter-overrides", "Memory=1024") == "1024"  # the command line over both
    (project / "samconfig.toml").write_text(
        '[default.global.parameters]\nparameter_overrides = "Memory=512"\n'
    )
    assert memory() == "512"
    (project / "samconfig.toml").write_text("[default\n")
    p = run("invoke", "Echo", cwd=project)
    assert p.returncode == 2 and "samconfig.toml: cannot be read" in p.stderr
    assert "Traceback" not in p.stderr


def test_bench_takes_the_event_from_a_file_and_reports_failures(project):
    (project / "event.json").write_text('{"id": 7}')
    p = run("bench", "cold", "Echo", "-n", "2", "-e", "event.json", "--json", "-", cwd=project)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["n"] == 2 and json.loads(p.stdout)["failed"] == 0
    p = run("bench", "cold", "Raiser", "-n", "2", "--event", '{"id": 7}', cwd=project)
    assert p.returncode == 2 and "every cold start failed (OrderError: bad order 7)" in p.stderr
    (project / "bad.json").write_text("{")
    p = run("bench", "cold", "Echo", "-e", "bad.json", cwd=project)
    assert p.returncode == 2 and "bad.json is not valid JSON" in p.stderr
