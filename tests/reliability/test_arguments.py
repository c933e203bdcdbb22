"""Bad arguments to the CLI and the Python API: a clear one-line error, never a traceback.

`--python` that is missing, a folder, not executable, not a Python or too old; the Python API
called with None, numbers, dicts where names, qualifiers and sizes belong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import BASIC, PY, spec
from warmstart import Runtime, SpecError, WarmstartError
from warmstart.errors import ArgumentError, InvalidParameterValueError, ResourceNotFoundError

TEMPLATE = f"""Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties: {{Handler: echo.handler, Runtime: {PY}, CodeUri: {BASIC}}}
"""


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmstart.cli", "invoke", "Echo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def script(path: Path, body: str, mode: int = 0o755) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return str(path)


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: str(d / "missing" / "python"), "No such file or directory"),
        (lambda d: str(d), "is a folder, not a Python interpreter"),
        (lambda d: script(d / "python", "exit 0", 0o644), "is not executable"),
        (
            lambda d: script(d / "python", "echo hello"),
            "is not a Python interpreter (asked for its version, it said: hello)",
        ),
        (
            lambda d: script(d / "python", "echo oops >&2; exit 3"),
            "is not a Python interpreter (asked for its version, it said: oops)",
        ),
        (
            lambda d: "/bin/true",
            "is not a Python interpreter (asked for its version, it exited with status 0)",
        ),
        # No Python 3.8 here: a stand-in that answers the version probe as one would.
        (
            lambda d: script(d / "python", "echo warmstart-probe 3 8 18 /usr/bin/python3.8"),
            "Python 3.8 is older than the oldest warmstart runs functions with (3.9)",
        ),
        (lambda d: "no-such-python3.99", "no such command on PATH"),
    ],
    ids=[
        "missing",
        "folder",
        "not-executable",
        "not-python",
        "fails",
        "true",
        "too-old",
        "not-on-path",
    ],
)
def test_a_bad_python_is_one_line_and_exit_2(
    tmp_path: Path, make: Callable[[Path], str], problem: str
) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    python = make(tmp_path)
    for p in (cli(tmp_path, "--python", python), cli(tmp_path, WARMSTART_PYTHON=python)):
        assert p.returncode == 2, p.stderr
        assert p.stderr.splitlines() == [f"Error: --python {python}: {problem}"]
        assert p.stdout == ""


def test_a_bad_python_through_the_api_is_an_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the engine's work folder
    with pytest.raises(WarmstartError, match=r"^--python /nope: No such file or directory$"):
        Runtime([spec("Echo", "echo.handler")], state_dir=tmp_path / "state", python="/nope")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_python_of_another_version_than_the_runtime_is_said(make_runtime: Any) -> None:
    rt = make_runtime(
        spec("Echo", "echo.handler").replace(runtime="python3.9"), python=sys.executable
    )
    assert any(
        w.startswith(f"python3.9 runs with Python {sys.version_info[0]}.") for w in rt.warnings
    )


def one_line(call: Callable[[], Any], error: type[Exception], message: str) -> str | None:
    """None when call raises `error` with exactly this one-line message, else what it did."""
    try:
        call()
    except error as e:
        return None if str(e) == message else f"said {str(e)!r}"
    except Exception as e:
        return f"raised {type(e).__name__}: {e}"
    return "raised nothing"


def test_wrong_arguments_to_the_runtime_are_clear_errors(make_runtime: Any) -> None:
    rt = make_runtime(spec("Echo", "echo.handler", auto_publish_alias="live"))
    name = "a function name or ARN (a str)"
    cases: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
        ("invoke(None)", lambda: rt.invoke(None), ArgumentError, f"function must be {name} (got None)"),
        ("invoke(123)", lambda: rt.invoke(123), ArgumentError, f"function must be {name} (got 123)"),
        ("invoke(b'Echo')", lambda: rt.invoke(b"Echo"), ArgumentError, f"function must be {name} (got b'Echo')"),
        ("invoke('')", lambda: rt.invoke(""), ArgumentError, f"function must be {name} (got '')"),
        ("qualifier=1", lambda: rt.invoke("Echo", {}, 1), ArgumentError,
         "qualifier must be a version or alias (a str) or None (got 1)"),
        ("client_context={}", lambda: rt.invoke("Echo", client_context={"a": 1}), ArgumentError,
         "client_context must be JSON as bytes or str, or None (got {'a': 1})"),
        ("identity=5", lambda: rt.invoke("Echo", identity=5), ArgumentError,
         "identity must be JSON as bytes or str, or None (got 5)"),
        ("trace_id=5", lambda: rt.invoke("Echo", trace_id=5), ArgumentError,
         "trace_id must be a str or None (got 5)"),
        ("invoke_async(None)", lambda: rt.invoke_async(None), ArgumentError, f"function must be {name} (got None)"),
        ("ainvoke(None)", lambda: asyncio.run(rt.ainvoke(None)), ArgumentError,
         f"function must be {name} (got None)"),
        ("ainvoke(bogus=1)", lambda: asyncio.run(rt.ainvoke("Echo", bogus=1)), ArgumentError,
         "ainvoke has no option bogus"),
        ("invoke('Nope')", lambda: rt.invoke("Nope"), ResourceNotFoundError,
         "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nope"),
        ("configure(memory_size='big')", lambda: rt.configure("Echo", memory_size="big"), SpecError,
         "Function 'Echo': MemorySize: must be an integer from 128 to 10240 (got 'big')"),
        ("configure(memory_size=True)", lambda: rt.configure("Echo", memory_size=True), SpecError,
         "Function 'Echo': MemorySize: must be an integer from 128 to 10240 (got True)"),
        ("configure(memory_size=64)", lambda: rt.configure("Echo", memory_size=64), SpecError,
         "Function 'Echo': MemorySize: 64 is outside 128..10240"),
        ("configure(timeout=1.5)", lambda: rt.configure("Echo", timeout=1.5), SpecError,
         "Function 'Echo': Timeout: must be an integer from 1 to 900 (got 1.5)"),
        ("configure(environment='A=1')", lambda: rt.configure("Echo", environment="A=1"), ArgumentError,
         "environment must be a dict or None (got 'A=1')"),
        ("configure(environment={'A': 1})", lambda: rt.configure("Echo", environment={"A": 1}), SpecError,
         "Function 'Echo': Environment.Variables.A: must be a text (got 1)"),
        ("configure(environment={1: 'a'})", lambda: rt.configure("Echo", environment={1: "a"}), SpecError,
         "Function 'Echo': Environment.Variables: 1 is not a valid name"),
        ("configure(handler=None)", lambda: rt.configure("Echo", handler=None), SpecError,
         "Function 'Echo': Handler: None is not a handler (1-128 characters, no spaces)"),
        ("configure(code_dir=None)", lambda: rt.configure("Echo", code_dir=None), SpecError,
         "Function 'Echo': CodeUri: must be a folder (got None)"),
        ("configure(layers=5)", lambda: rt.configure("Echo", layers=5), SpecError,
         "Function 'Echo': Layers: must be a list of folders (got 5)"),
        ("configure(runtime=3.12)", lambda: rt.configure("Echo", runtime=3.12), SpecError,
         "Function 'Echo': Runtime: must be a runtime such as python3.12 (got 3.12)"),
        ("configure(snap_start='yes')", lambda: rt.configure("Echo", snap_start="yes"), SpecError,
         "Function 'Echo': SnapStart: must be true or false (got 'yes')"),
        ("configure(bogus=1)", lambda: rt.configure("Echo", bogus=1), ArgumentError,
         "configure cannot change bogus (it can change application_log_level, architecture, "
         "code_dir, environment, ephemeral_storage_mb, handler, layers, log_format, "
         "max_event_age_s, max_retry_attempts, memory_size, runtime, snap_start, timeout, "
         "tracing)"),
        ("configure(None)", lambda: rt.configure(None, memory_size=256), ArgumentError,
         f"function must be {name} (got None)"),
        ("put_reserved_concurrency('5')", lambda: rt.put_reserved_concurrency("Echo", "5"), ArgumentError,
         "reserved must be a whole number or None (got '5')"),
        ("put_reserved_concurrency(-1)", lambda: rt.put_reserved_concurrency("Echo", -1),
         InvalidParameterValueError, "reserved concurrency must be >= 0 (got -1)"),
        ("put_provisioned_concurrency(None)", lambda: rt.put_provisioned_concurrency("Echo", None, 1),
         ArgumentError, "qualifier must be a version or alias (a str) (got None)"),
        ("put_provisioned_concurrency('x')", lambda: rt.put_provisioned_concurrency("Echo", "live", "x"),
         InvalidParameterValueError, "provisioned concurrency must be a whole number >= 0 (got 'x')"),
        ("put_provisioned_concurrency(True)", lambda: rt.put_provisioned_concurrency("Echo", "live", True),
         InvalidParameterValueError, "provisioned concurrency must be a whole number >= 0 (got True)"),
        ("create_alias(None)", lambda: rt.create_alias("Echo", None, "1"), ArgumentError,
         "alias must be an alias name (a str) (got None)"),
        ("create_alias(version=1)", lambda: rt.create_alias("Echo", "x", 1), ArgumentError,
         "version must be a version (a str, e.g. '1') (got 1)"),
        ("publish_version(None)", lambda: rt.publish_version(None), ArgumentError,
         f"function must be {name} (got None)"),
        ("recycle(None)", lambda: rt.recycle(None), ArgumentError, f"function must be {name} (got None)"),
        ("function(1)", lambda: rt.function(1), ArgumentError, f"name must be {name} (got 1)"),
        ("environments(1)", lambda: rt.environments(1), ArgumentError, f"function must be {name} (got 1)"),
        ("events(status=1)", lambda: rt.events(None, 1), ArgumentError,
         "status must be a status (a str) or None (got 1)"),
        ("redrive(ids='abc')", lambda: rt.redrive("abc"), ArgumentError,
         "ids must be a list of event ids (got 'abc')"),
    ]  # fmt: skip
    wrong = {
        what: got for what, call, error, message in cases if (got := one_line(call, error, message))
    }
    assert wrong == {}
    # Nothing was changed by the calls that failed; the function still runs.
    assert rt.function("Echo").memory_size == 128 and rt.function("Echo").environment == {}
    assert rt.invoke("Echo", {"k": 1}).payload["event"] == {"k": 1}
    assert rt.service.function("Echo").reserved is None


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda s: Runtime("Echo", state_dir=s), ArgumentError, "functions must be FunctionSpecs (got 'Echo')"),
        (lambda s: Runtime([None], state_dir=s), ArgumentError, "each of functions must be a FunctionSpec (got None)"),
        (lambda s: Runtime([spec("E", "echo.handler")], config="x"), ArgumentError,
         "config must be a Config or None (got 'x')"),
        (lambda s: Runtime([spec("E", "echo.handler")], state_dir=s, account_concurrency="5"), ArgumentError,
         "setting account_concurrency must be a whole number (got '5')"),
        (lambda s: Runtime([spec("E", "echo.handler")], state_dir=s, idle_timeout_s=[1]), ArgumentError,
         "setting idle_timeout_s must be a number (got [1])"),
        (lambda s: Runtime([spec("E", "echo.handler")], state_dir=s, bogus=1), ArgumentError,
         "unknown settings: bogus"),
        (lambda s: Runtime([spec("E", "echo.handler", memory_size="big")], state_dir=s), SpecError,
         "Function 'E': MemorySize: must be an integer from 128 to 10240 (got 'big')"),
        (lambda s: Runtime([spec(None, "echo.handler")], state_dir=s), SpecError,
         "Function None: FunctionName: must be 1-64 letters, digits, hyphens or underscores"),
        (lambda s: Runtime.from_template(None, state_dir=s), ArgumentError, "path must be a path (got None)"),
        (lambda s: Runtime.from_template(BASIC / "nope.yaml", state_dir=s, parameter_overrides=5),
         WarmstartError, "parameter overrides must be text, a list of texts or a map (got 5)"),
        (lambda s: Runtime.from_handler("echo.handler", None, state_dir=s), ArgumentError,
         "code_dir must be a path (got None)"),
        (lambda s: Runtime.from_handler(None, BASIC, state_dir=s), SpecError,
         "Function 'Function': Handler: None is not a handler (1-128 characters, no spaces)"),
        (lambda s: Runtime.from_handler("echo.handler", BASIC, environment=["A"], state_dir=s),
         ArgumentError, "environment must be a dict or None (got ['A'])"),
        (lambda s: Runtime.from_handler("echo.handler", BASIC, environment={"A": "a\0"}, state_dir=s),
         SpecError, "Function 'Function': Environment.Variables.A: must be a text (got 'a\\x00')"),
        (lambda s: Runtime.from_handler("echo.handler", BASIC, timeout="3", state_dir=s), SpecError,
         "Function 'Function': Timeout: must be an integer from 1 to 900 (got '3')"),
    ],
)  # fmt: skip
def test_wrong_arguments_to_make_a_runtime_are_clear_errors(tmp_path, make, error, message) -> None:
    assert one_line(lambda: make(tmp_path / "state"), error, message) is None
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_an_unknown_setting_is_still_a_type_error(tmp_path) -> None:
    with pytest.raises(TypeError, match="unknown settings: bogus"):
        Runtime([spec("E", "echo.handler")], state_dir=tmp_path, bogus=1)
