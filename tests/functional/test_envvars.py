"""Variables given for a run over the template's: SAM's --env-vars file, --env, the caller's
AWS_ENDPOINT_URL* (what passes from the shell into functions)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from conftest import APPS, PY, spec
from warmstart import Config, Runtime
from warmstart.envvars import EnvVarsError, apply_env_vars, read_env_vars, with_variables

TEMPLATE = APPS / "template.yaml"


def env_file(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "env.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_sam_env_vars_file_is_read_as_sam_writes_it(tmp_path):
    doc = {"Parameters": {"STAGE": "local", "DEBUG": True, "PORT": 8000}, "Echo": {"T": "x"}}
    assert read_env_vars(env_file(tmp_path, doc)) == {
        "Parameters": {"STAGE": "local", "DEBUG": "true", "PORT": "8000"},
        "Echo": {"T": "x"},
    }


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object of functions"),
        (b'{"Echo": "x"}', "Echo must be an object of variables"),
        (b'{"Echo": {"A": {"b": 1}}}', "Echo.A must be text, a number or a boolean"),
        (b'{"Echo": {"A": null}}', "Echo.A must be text"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "env.json"
    path.write_bytes(content)
    with pytest.raises(EnvVarsError, match=problem) as e:
        read_env_vars(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(EnvVarsError, match="cannot read it"):
        read_env_vars(tmp_path / "missing.json")


def test_each_function_gets_parameters_then_its_own(caplog):
    a = spec("A", "echo.handler", environment={"TABLE": "cloud", "KEEP": "1"})
    b = spec("B", "echo.handler", logical_id="BFunction")
    given = {
        "Parameters": {"TABLE": "local", "STAGE": "dev"},
        "A": {"STAGE": "a"},
        "BFunction": {"STAGE": "by logical id"},
        "B": {"STAGE": "by name"},
        "Nope": {"X": "1"},
    }
    with caplog.at_level(logging.INFO, logger="warmstart"):
        a2, b2 = apply_env_vars([a, b], given)
    assert a2.environment == {"TABLE": "local", "KEEP": "1", "STAGE": "a"}
    assert b2.environment == {"TABLE": "local", "STAGE": "by logical id"}
    assert "A: variables the template does not declare are added: STAGE" in caplog.text
    assert "no function is named Nope" in caplog.text  # never silently ignored
    assert with_variables(given, {"STAGE": "cli"})["A"]["STAGE"] == "cli"


def test_functions_see_them_and_the_callers_endpoint_settings(monkeypatch, state_dir):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    monkeypatch.setenv("NOT_PASSED", "secret")
    config = Config.resolve(
        state_dir=state_dir,
        python=sys.executable,  # (the template says python3.11)
        env_vars={"Echo": {"TABLE_NAME": "local"}, "Parameters": {"STAGE": "dev"}},
    )
    rt = Runtime.from_template(TEMPLATE, config=config)
    try:
        env = rt.invoke("Echo", {}).payload["env"]
    finally:
        rt.close()
    assert env["TABLE_NAME"] == "local" and env["STAGE"] == "dev"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8000"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    assert "NOT_PASSED" not in env


def test_the_template_wins_over_the_callers_endpoint(make_runtime, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://from-the-shell")
    rt = make_runtime(spec("Echo", "echo.handler", environment={"AWS_ENDPOINT_URL": "http://t"}))
    assert rt.invoke("Echo", {}).payload["env"]["AWS_ENDPOINT_URL"] == "http://t"


def test_from_handler_takes_them_too(tmp_path, state_dir):
    config = Config.resolve(state_dir=state_dir, env_vars={"Parameters": {"STAGE": "dev"}})
    rt = Runtime.from_handler("echo.handler", APPS / "basic", name="Fn", runtime=PY, config=config)
    with rt:
        assert rt.invoke("Fn", {}).payload["env"]["STAGE"] == "dev"
