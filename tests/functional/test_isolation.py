"""What a handler can see: its code, its layers, boto3, the standard library; nothing else."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import APPS, BASIC, spec
from warmstart.engine.python import RUNTIME_PACKAGES


def test_packages_installed_next_to_warmstart_are_not_importable(make_runtime):
    rt = make_runtime(spec("Importer", "importer.handler"))
    for module in ("click", "rich", "yaml", "warmstart", "pytest"):
        res = rt.invoke("Importer", {"module": module})
        assert res.payload == {"ok": False, "error": f"No module named '{module}'"}, module


def test_boto3_and_the_standard_library_are(make_runtime):
    rt = make_runtime(spec("Importer", "importer.handler", memory_size=512))
    for module in ("boto3", "botocore", "json", "sqlite3", "urllib.request"):
        assert rt.invoke("Importer", {"module": module}).payload["ok"], module


def test_a_handler_importing_a_missing_dependency_fails_as_on_lambda(make_runtime, tmp_path):
    (tmp_path / "app.py").write_text("import yaml\n\ndef handler(event, context):\n    return 1\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=tmp_path))
    res = rt.invoke("App", {})
    assert res.error_type == "Runtime.ImportModuleError"
    assert res.payload["errorMessage"] == "Unable to import module 'app': No module named 'yaml'"


def test_packaged_dependencies_win_over_the_runtimes(make_runtime, tmp_path):
    (tmp_path / "boto3").mkdir()
    (tmp_path / "boto3" / "__init__.py").write_text("VERSION = 'packaged'\n")
    shutil.copy(BASIC / "importer.py", tmp_path)
    rt = make_runtime(spec("Importer", "importer.handler", code_dir=tmp_path))
    res = rt.invoke("Importer", {"module": "boto3"})
    assert res.payload["file"] == str(tmp_path / "boto3" / "__init__.py")


def test_layers(make_runtime, tmp_path):
    layer = tmp_path / "layer"
    site = (
        layer
        / "python"
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
    )
    site.mkdir(parents=True)
    (site / "sitemod.py").write_text("NAME = 'from site-packages in the layer'\n")
    shutil.copytree(APPS / "layer" / "python", layer / "python", dirs_exist_ok=True)
    rt = make_runtime(spec("Layered", "uses_layer.handler", layers=(layer,)))
    assert rt.invoke("Layered", {}).payload == {
        "layer": "from the layer",
        "site": "from site-packages in the layer",
    }


def test_sys_path_has_only_what_lambda_gives(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    res = rt.invoke("Echo", {})
    path = res.payload["sys_path"]
    assert path[0] == str(BASIC)
    runtime_dir = res.payload["env"]["LAMBDA_RUNTIME_DIR"]
    assert runtime_dir in path
    # Only boto3 and its dependencies, and SnapStart's hooks, as Lambda's Python runtime ships.
    shipped = set(RUNTIME_PACKAGES) | {"snapshot_restore_py"}
    assert {n.removesuffix(".py") for n in os.listdir(runtime_dir)} <= shipped
    assert "boto3" in os.listdir(runtime_dir)
    assert not any("site-packages" in p for p in path if not p.startswith(runtime_dir))


def test_json_log_format(make_runtime):
    rt = make_runtime(spec("Printer", "printer.handler", log_format="JSON"))
    res = rt.invoke("Printer", {})
    lines = res.log.splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    kinds = [e.get("type") for e in events]
    assert kinds[0] == "platform.initStart" and kinds[-1] == "platform.report"
    assert "platform.start" in kinds
    start = events[kinds.index("platform.start")]
    assert start["record"] == {
        "requestId": res.request_id,
        "version": "$LATEST",
        "functionArn": res.arn,
    }
    report = events[-1]["record"]
    assert report["requestId"] == res.request_id and report["status"] == "success"
    assert set(report["metrics"]) == {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    app = [e for e in events if "level" in e]
    # JSON mode logs at INFO by default, with the runtime's fields.
    assert {e["message"] for e in app} >= {
        "a warning with args",
        "info is below the default level",
        "from a named logger",
    }
    warning = next(e for e in app if e["level"] == "WARNING")
    assert warning["requestId"] == res.request_id and warning["logger"] == "root"
    assert "to stdout" in lines  # print output stays plain text


@pytest.mark.skipif(
    shutil.which("python3.12") is None
    and not Path("/root/.pyenv/versions/3.12.1/bin/python3.12").exists(),
    reason="no Python 3.12 on this machine",
)
def test_the_runtimes_python_is_used_when_on_path(make_runtime, tmp_path, monkeypatch):
    from warmstart.engine import interpreters

    real = shutil.which("python3.12")
    if real is None or interpreters._probe(real) is None:
        real = "/root/.pyenv/versions/3.12.1/bin/python3.12"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3.12").symlink_to(real)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    rt = make_runtime(spec("Echo", "echo.handler").replace(runtime="python3.12"))
    res = rt.invoke("Echo", {})
    assert res.payload["python"] == [3, 12]
    assert not rt.warnings
    assert "python:3.12." in res.log.splitlines()[0]


def test_a_missing_runtime_python_falls_back_with_one_warning(make_runtime, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    rt = make_runtime(
        spec("Old", "echo.handler").replace(runtime="python3.7"),
        spec("Old2", "echo.handler").replace(runtime="python3.7"),
    )
    assert rt.warnings == [
        f"python3.7 not found on PATH: running with Python {sys.version_info[0]}."
        f"{sys.version_info[1]} ({sys.executable}) instead"
    ]
    assert rt.invoke("Old", {}).payload["python"] == list(sys.version_info[:2])


def _interpreters() -> list[str]:
    """Every python3.9..3.13 on this machine that runs (PATH entries may be shims that fail)."""
    import glob

    from warmstart.engine.interpreters import _probe

    found = {}
    for minor in range(9, 14):
        candidates = [shutil.which(f"python3.{minor}") or ""]
        candidates += sorted(
            glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3.{minor}"))
        )
        for c in candidates:
            if c and _probe(c) is not None:
                found[minor] = c
                break
    return [found[m] for m in sorted(found)]


@pytest.mark.parametrize(
    "python",
    _interpreters()
    or [
        pytest.param("", marks=pytest.mark.skip(reason="no other Python versions on this machine"))
    ],
)
def test_the_runtime_runs_on_every_python_lambda_supports(make_runtime, python):
    rt = make_runtime(spec("Echo", "echo.handler"), spec("Raiser", "raiser.handler"), python=python)
    res = rt.invoke("Echo", {"k": 1})
    assert res.payload["event"] == {"k": 1} and res.start_kind == "cold"
    assert rt.invoke("Echo", {}).start_kind == "warm"
    assert rt.invoke("Raiser", {}).error_type == "OrderError"


@pytest.mark.parametrize("batch", [False, True])
def test_environments_run_batch_only_when_asked(make_runtime, batch):
    # `warmstart serve` asks (Config.batch_environments): its environments must not preempt it.
    rt = make_runtime(spec("Sched", "results.scheduling"), batch_environments=batch)
    policy = rt.invoke("Sched").payload["policy"]
    assert policy == (os.SCHED_BATCH if batch else os.SCHED_OTHER)
