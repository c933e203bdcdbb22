"""The README's two commands stay true: CI runs the second one, the first runs the demo."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks[:2]]


def test_the_first_command_installs_and_runs_the_demo():
    install, _ = commands()
    assert "pip install ." in install and install.endswith("warmstart demo")


def test_ci_runs_the_second_command():
    _, test = commands()
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == [test]
    assert "pytest" in test and "[test]" in test
