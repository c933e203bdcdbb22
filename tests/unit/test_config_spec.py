"""Settings resolution and function definition checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmstart import Config, FunctionSpec, SpecError, WarmstartError
from warmstart.spec import validate


def test_settings_resolve_argument_then_environment_then_default(monkeypatch):
    monkeypatch.setenv("WARMSTART_IDLE_TIMEOUT_S", "42")
    monkeypatch.setenv("WARMSTART_FREEZE", "false")
    c = Config.resolve()
    assert (c.idle_timeout_s, c.freeze, c.account_concurrency) == (42.0, False, 1000)
    assert Config.resolve(idle_timeout_s=7).idle_timeout_s == 7
    monkeypatch.setenv("WARMSTART_ACCOUNT_CONCURRENCY", "many")
    with pytest.raises(WarmstartError, match="WARMSTART_ACCOUNT_CONCURRENCY"):
        Config.resolve()
    with pytest.raises(TypeError, match="unknown settings"):
        Config.resolve(nonsense=1)


def test_spec_accepts_str_paths_and_validates(tmp_path):
    spec = FunctionSpec("F", "app.handler", str(tmp_path), layers=(str(tmp_path),))
    assert isinstance(spec.code_dir, Path) and isinstance(spec.layers[0], Path)
    assert validate(spec) is spec
    with pytest.raises(SpecError, match="FunctionName"):
        validate(spec.replace(name="has space"))
    with pytest.raises(SpecError, match="Layers: 6 layers"):
        validate(spec.replace(layers=(tmp_path,) * 6))
    with pytest.raises(SpecError, match="more than ReservedConcurrentExecutions"):
        validate(
            spec.replace(
                auto_publish_alias="live", provisioned_concurrency=3, reserved_concurrency=2
            )
        )
    with pytest.raises(SpecError, match="only applies with LogFormat JSON"):
        validate(spec.replace(application_log_level="DEBUG"))
