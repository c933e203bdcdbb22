"""The package is ruff-clean and mypy-clean (strict)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
        [sys.executable, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks"],
        [sys.executable, "-m", "mypy"],
    ],
)
def test_clean(command):
    p = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
