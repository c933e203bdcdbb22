"""`warmstart build`: requirements installed for Lambda, cached, and the build run while fresh.

The requirement is a wheel in tests/apps/wheels (no network): a pure-Python package, as pip
installs it for Lambda's platform from any index.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import APPS
from warmstart import Config, Runtime
from warmstart.build import BuildError, build, pip_platforms

WHEEL = APPS / "wheels" / "tinydep-1.0-py3-none-any.whl"  # pure Python, as an index serves one
HANDLER = "import tinydep\n\ndef handler(event, context):\n    return tinydep.VALUE\n"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    src = tmp_path / "hello"
    src.mkdir()
    (src / "app.py").write_text(HANDLER)
    shutil.copy(WHEEL, src)
    (src / "requirements.txt").write_text(f"./{WHEEL.name}\n")
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  HelloFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: app.handler\n      Runtime: python3.11\n      CodeUri: hello/\n"
    )
    return tmp_path


def runtime(app: Path) -> Runtime:
    config = Config.resolve(state_dir=app / ".warmstart", python=sys.executable)
    return Runtime.from_template(app / "template.yaml", config=config)


def test_before_a_build_the_import_fails_and_says_to_build(app, caplog):
    with caplog.at_level(logging.WARNING, logger="warmstart"), runtime(app) as rt:
        res = rt.invoke("HelloFunction", {})
    assert res.error_type == "Runtime.ImportModuleError"
    assert "tinydep is in its requirements.txt, which is not installed" in caplog.text
    assert "warmstart build HelloFunction" in caplog.text


def test_a_build_runs_and_a_second_one_comes_from_the_cache(app, caplog):
    state = app / ".warmstart"
    [first] = build(app / "template.yaml", state_dir=state)
    assert first.requirements and not first.cached
    assert (first.folder / "tinydep" / "__init__.py").is_file()
    assert (first.folder / "app.py").read_text() == HANDLER
    with caplog.at_level(logging.INFO, logger="warmstart"), runtime(app) as rt:
        assert rt.invoke("HelloFunction", {}).payload == "from the wheel"
    assert "HelloFunction: running the warmstart build in" in caplog.text

    [second] = build(app / "template.yaml", ["HelloFunction"], state_dir=state)
    assert second.cached and second.seconds < first.seconds

    # An edit to the sources makes the build stale: the sources run again, and a line says so.
    time.sleep(0.01)
    (app / "hello" / "app.py").write_text(HANDLER.replace("tinydep.VALUE", "'edited'"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="warmstart"), runtime(app) as rt:
        assert rt.invoke("HelloFunction", {}).error_type == "Runtime.ImportModuleError"
    assert "is older than its sources" in caplog.text


def test_what_cannot_be_built_is_one_clear_error(app, monkeypatch):
    with pytest.raises(BuildError, match="no function 'Nope' in the template: HelloFunction"):
        build(app / "template.yaml", ["Nope"], state_dir=app / ".warmstart")
    (app / "hello" / "requirements.txt").write_text("no-such-package-anywhere-xyz==9.9\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # (the index would only say the same, slower)
    with pytest.raises(BuildError, match=r"pip failed: .*no-such-package-anywhere-xyz"):
        build(app / "template.yaml", state_dir=app / ".warmstart")
    assert not (app / ".warmstart" / "build" / "HelloFunction").exists()  # nothing half made


def test_the_platforms_are_lambdas():
    assert pip_platforms("python3.11", "x86_64") == [
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
    ]
    assert "manylinux_2_34_aarch64" in pip_platforms("python3.12", "arm64")
