"""The Python examples of the docs run: serve.md against a real `warmstart serve`, tuning.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from e2e.serve_helpers import APPS, Server

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "warmstart" / "demo" / "app" / "template.yaml"


def test_the_boto3_example_of_the_serve_docs_runs(tmp_path, capsys):
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "serve.md").read_text(), re.S)[0]
    server = Server(tmp_path / "state", DEMO).start()
    try:
        code = code.replace("http://127.0.0.1:3001", server.lambda_url)
        scope: dict[str, object] = {}
        exec(compile(code, "docs/serve.md", "exec"), scope)
        res = scope["res"]
        assert res["StatusCode"] == 200 and "FunctionError" not in res  # type: ignore[index]
        assert "Function not found" in capsys.readouterr().out
    finally:
        server.stop()


def test_the_python_example_of_the_tuning_docs_runs(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "tuning.md").read_text(), re.S)[0]
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Crunch:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      Handler: cpu.handler\n      Runtime: python3.11\n      CodeUri: {APPS / 'basic'}\n"
        f"      Timeout: 60\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARMSTART_PYTHON", sys.executable)
    # A lighter run than the docs' (10 runs of the default 2M-step loop per size).
    light = code.replace("num=10)", 'num=2, payloads=[({"n": 1000}, 1)])')
    assert light != code
    scope: dict[str, object] = {}
    exec(compile(light, "docs/tuning.md", "exec"), scope)
    assert scope["doc"]["power"] in (128, 512, 1024)  # type: ignore[index]
    assert (tmp_path / "tuning.png").stat().st_size > 0


def test_the_python_example_of_the_load_docs_runs(tmp_path, monkeypatch, capsys):
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "load.md").read_text(), re.S)[0]
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      Handler: noop.handler\n      Runtime: python3.11\n      CodeUri: {APPS / 'basic'}\n"
    )
    (tmp_path / "load.yml").write_text(
        "config:\n  phases: [{duration: 1, arrivalRate: 10}]\n"
        "scenarios: [{engine: lambda, flow: [{invoke: {payload: '{}'}}]}]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARMSTART_PYTHON", sys.executable)
    exec(compile(code, "docs/load.md", "exec"), {})
    rate, p99, cold = capsys.readouterr().out.split()
    # Within the load accuracy target (2%): the last arrival may be a little late.
    assert float(rate) == pytest.approx(10.0, rel=0.02) and float(p99) > 0 and int(cold) >= 1
