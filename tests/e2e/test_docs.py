"""The examples of the docs work: every YAML block parses (templates load, load scripts read),
and the Python examples run: serve.md against a real `warmstart serve`, tuning.md, load.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.serve_helpers import APPS, Server
from warmstart import load_template
from warmstart.load import load_script
from warmstart.sam import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "warmstart" / "demo" / "app" / "template.yaml"


def yaml_blocks() -> list[tuple[str, str]]:
    """(file:line, text) of every ```yaml block of the README and the docs."""
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, re.S | re.M):
            line = text[: m.start()].count("\n") + 1
            blocks.append((f"{path.relative_to(ROOT)}:{line}", m.group(1)))
    return blocks


def local_folders(doc: Any) -> list[str]:
    """The folders a template's CodeUri and ContentUri name."""
    if isinstance(doc, list):
        return [f for v in doc for f in local_folders(v)]
    if not isinstance(doc, dict):
        return []
    named = [v for k, v in doc.items() if k in ("CodeUri", "ContentUri") and isinstance(v, str)]
    return named + [f for v in doc.values() for f in local_folders(v)]


def test_the_docs_have_yaml_examples():
    assert len(yaml_blocks()) >= 3


@pytest.mark.parametrize("where, block", yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_every_yaml_example_of_the_docs_parses_and_loads(tmp_path, where, block):
    doc = yaml.load(block, Loader=CfnLoader)  # CloudFormation's short tags (!Ref...) included
    path = tmp_path / "example.yaml"
    path.write_text(block)
    if isinstance(doc, dict) and "Resources" in doc:
        for folder in local_folders(doc):
            (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        assert load_template(path).functions, where
    elif isinstance(doc, dict) and "scenarios" in doc:
        assert load_script(path).scenarios, where


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
