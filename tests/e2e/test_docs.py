"""The examples of docs/serve.md run against a real `warmstart serve`."""

from __future__ import annotations

import re
from pathlib import Path

from e2e.serve_helpers import Server

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
