"""Engine settings, shared by the CLI and the Python API.

Each setting resolves argument -> environment variable (WARMSTART_<NAME>) -> default.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArgumentError, WarmstartError

__all__ = ["Config"]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean")


@dataclass(frozen=True)
class Config:
    """How the engine runs. Example: Config.resolve(idle_timeout_s=60, isolation="none")."""

    state_dir: Path = Path(".warmstart")
    region: str = "us-east-1"
    account_id: str = "123456789012"
    account_concurrency: int = 1000  # Lambda's default account limit
    idle_timeout_s: float = 600.0  # idle environments are shut down after this
    max_lifetime_s: float | None = None  # and any environment after this (None: never)
    freeze: bool = True  # stop idle environments (SIGSTOP) as Lambda freezes them
    watch_code: bool = True  # replace environments when their code changes on disk
    isolation: str = "auto"  # auto | cgroup | cgroup-v1 | cgroup-v2 | none
    cgroup_v2_root: str | None = None  # a delegated cgroup v2 folder to work under
    spin_us: int = 200  # how long an invoking thread polls for a result before it sleeps
    # How long an environment polls for its next event while events come back to back: long
    # enough to cover an HTTP round trip to a client of `warmstart serve`.
    env_spin_us: int = 1000
    # Environments print how long each import takes (python -X importtime) into their logs:
    # what `warmstart bench cold` reads to show where INIT goes.
    import_time: bool = False
    # Environments run with the SCHED_BATCH policy: woken, they do not preempt what runs on
    # their core. For a server answering many clients (`warmstart serve` sets it), whose work
    # every environment waits for; it costs a lone caller's tail latency.
    batch_environments: bool = False
    records: bool = True  # write invocation records to SQLite
    python: str | None = None  # run every function with this interpreter
    init_timeout_s: float = 10.0  # Lambda's INIT limit for on-demand environments
    async_delay_scale: float = 0.01  # async retries wait Lambda's 1 and 2 minutes times this
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Variables over the template's, as SAM's --env-vars file gives them (see envvars.py):
    # {"Parameters": {...every function...}, "<function>": {...}}.
    env_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    build_dir: Path | None = None

    @classmethod
    def resolve(cls, **given: Any) -> Config:
        """Settings from arguments (None = not given), else WARMSTART_* variables, else defaults."""
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ArgumentError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if given.get(f.name) is not None:
                values[f.name] = _checked(f.name, str(f.type), given[f.name])
                continue
            env = os.environ.get(f"WARMSTART_{f.name.upper()}")
            if env is None or f.name in ("parameter_overrides", "env_vars"):
                continue
            try:
                values[f.name] = _convert(f.type, env)
            except ValueError as e:
                raise WarmstartError(f"WARMSTART_{f.name.upper()}: {e}") from None
        for key in ("state_dir", "build_dir"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.account_concurrency < 1:
            raise WarmstartError("account_concurrency must be at least 1")
        if self.idle_timeout_s <= 0:
            raise WarmstartError("idle_timeout_s must be positive")
        if self.max_lifetime_s is not None and self.max_lifetime_s <= 0:
            raise WarmstartError("max_lifetime_s must be positive")
        if self.spin_us < 0 or self.env_spin_us < 0:
            raise WarmstartError("spin_us and env_spin_us must be >= 0")

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_KINDS: dict[str, tuple[str, Any]] = {
    "bool": ("True or False", lambda v: isinstance(v, bool)),
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": (
        "a number",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v),
    ),
    "str": ("a str", lambda v: isinstance(v, str)),
    "Path": ("a path", lambda v: isinstance(v, (str, os.PathLike))),
    "dict[str, str]": ("a dict", lambda v: isinstance(v, dict)),
    "dict[str, dict[str, str]]": (
        "a dict of dicts (function or 'Parameters' -> variables)",
        lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
    ),
}


def _checked(name: str, kind: str, value: Any) -> Any:
    """A setting given as an argument, if it has the field's type (None: not given)."""
    what, ok = _KINDS[kind.removesuffix(" | None")]
    if not ok(value):
        raise ArgumentError(f"setting {name} must be {what} (got {value!r:.60})")
    return value


def _convert(kind: Any, text: str) -> Any:
    kind = str(kind)
    if "bool" in kind:
        return _bool(text)
    if kind.startswith("int"):
        return int(text)
    if "float" in kind:
        return None if text.lower() in ("", "none") else float(text)
    return text
