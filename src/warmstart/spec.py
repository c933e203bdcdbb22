"""Function definitions: what warmstart needs to know to run a Lambda function, validated."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError, shown

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT_S",
    "RESERVED_ENV_VARS",
    "FunctionSpec",
    "measured_environment",
    "normalized",
    "validate",
]

DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)
EPHEMERAL_RANGE = (512, 10240)
ENV_VARS_MAX_BYTES = 4096
MAX_LAYERS = 5
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ALIAS_RE = re.compile(r"^(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}$")
# Lambda's API accepts any of these; the runtime judges.
HANDLER_RE = re.compile(r"^[^\s\x00]{1,128}$")
ENV_KEY_RE = re.compile(r"^[a-zA-Z]\w*$")
PYTHON_RUNTIME_RE = re.compile(r"^python3\.\d+$")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

# Lambda sets these itself and rejects functions that try to.
RESERVED_ENV_VARS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass(frozen=True)
class FunctionSpec:
    """One function's configuration. Immutable: a change makes a new spec (and new environments).

    Example:
        FunctionSpec("Hello", handler="app.handler", code_dir=Path("hello"), memory_size=256)
    """

    name: str
    handler: str
    code_dir: Path
    runtime: str = "python3.11"
    memory_size: int = DEFAULT_MEMORY_MB
    timeout: int = DEFAULT_TIMEOUT_S
    environment: dict[str, str] = field(default_factory=dict)
    architecture: str = "x86_64"
    layers: tuple[Path, ...] = ()
    reserved_concurrency: int | None = None
    auto_publish_alias: str | None = None
    provisioned_concurrency: int = 0
    snap_start: bool = False
    ephemeral_storage_mb: int = 512
    log_format: str = "Text"
    application_log_level: str | None = None
    max_retry_attempts: int = 2  # asynchronous invocations (EventInvokeConfig)
    max_event_age_s: int = 21600
    events: dict[str, Any] = field(default_factory=dict)  # the template's Events, for front doors
    ignored: tuple[
        str, ...
    ] = ()  # properties present in the definition that warmstart does not use
    logical_id: str | None = None  # the template resource, when the name differs
    # Why this function cannot run here ('' if it can): it is listed and answers that, and the
    # template's other functions run (a container image, say).
    unsupported: str = ""
    tracing: str = "PassThrough"  # Active: each invocation gets a sampled X-Ray trace header
    # Distributions its requirements.txt names that are not installed (its sources run, not a
    # build): an import that fails then says to build.
    uninstalled: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept str paths from callers; keep Paths inside. Anything else stays as given, for
        # validate() to name.
        if isinstance(self.code_dir, (str, os.PathLike)):
            object.__setattr__(self, "code_dir", Path(self.code_dir))
        if isinstance(self.layers, (list, tuple)) and all(
            isinstance(p, (str, os.PathLike)) for p in self.layers
        ):
            object.__setattr__(self, "layers", tuple(Path(p) for p in self.layers))

    def replace(self, **changes: Any) -> FunctionSpec:
        return dataclasses.replace(self, **changes)

    @property
    def is_python(self) -> bool:
        return isinstance(self.runtime, str) and bool(PYTHON_RUNTIME_RE.match(self.runtime))


def _check_range(spec: FunctionSpec, prop: str, value: Any, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            spec.name, prop, f"must be an integer from {lo} to {hi} (got {shown(value)})"
        )
    if not lo <= value <= hi:
        raise SpecError(spec.name, prop, f"{value} is outside {lo}..{hi}")


def _check_text(spec: FunctionSpec, prop: str, value: Any, what: str = "a text") -> None:
    """Text that can go into an environment variable or a path: no NUL, nothing but UTF-8."""
    ok = isinstance(value, str) and "\x00" not in value
    if ok:
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate
            ok = False
    if not ok:
        raise SpecError(spec.name, prop, f"must be {what} (got {shown(value)})")


def normalized(name: str) -> str:
    """A distribution or module name as the two compare (PEP 503, with `_` for `-`).

    Example: normalized("python-dateutil") -> "python_dateutil"
    """
    return re.sub(r"[-_.]+", "_", name).lower()


# Distributions whose module has another name (for the hint of a failed import).
MODULES = {
    "pyyaml": "yaml", "python_dateutil": "dateutil", "beautifulsoup4": "bs4", "pillow": "pil",
    "scikit_learn": "sklearn", "opencv_python": "cv2", "opencv_python_headless": "cv2",
    "attrs": "attr", "protobuf": "google", "pyjwt": "jwt", "psycopg2_binary": "psycopg2",
    "psycopg_binary": "psycopg", "mysqlclient": "mysqldb", "pymysql": "pymysql",
    "python_jose": "jose", "aws_xray_sdk": "aws_xray_sdk",
}  # fmt: skip


def measured_environment(variables: dict[str, str]) -> str:
    """The variables as Lambda measures them against its 4 KB: as compact JSON (the string its
    message quotes). Example: measured_environment({"A": "1"}) -> '{"A":"1"}'."""
    return json.dumps(variables, separators=(",", ":"), ensure_ascii=False)


def folder_exists(path: Any) -> bool:
    """Whether path is a Path to a folder; a name the filesystem cannot take is not one.

    Example: folder_exists(Path("x" * 5000)) -> False (Path.is_dir raises ENAMETOOLONG)
    """
    try:
        return isinstance(path, Path) and path.is_dir()
    except OSError:
        return False


def validate(spec: FunctionSpec) -> FunctionSpec:
    """Check a definition as Lambda's API would; raise SpecError naming the property.

    Example: validate(FunctionSpec("F", "app.handler", Path("src"), memory_size=64))
    raises SpecError("Function 'F': MemorySize: 64 is outside 128..10240").
    """
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        raise SpecError(
            spec.name, "FunctionName", "must be 1-64 letters, digits, hyphens or underscores"
        )
    if spec.unsupported:  # nothing of it runs: nothing more to check
        return spec
    if not isinstance(spec.handler, str) or not HANDLER_RE.match(spec.handler):
        raise SpecError(
            spec.name,
            "Handler",
            f"{shown(spec.handler)} is not a handler (1-128 characters, no spaces)",
        )
    _check_text(spec, "Runtime", spec.runtime, "a runtime such as python3.12")
    _check_range(spec, "MemorySize", spec.memory_size, MEMORY_RANGE)
    _check_range(spec, "Timeout", spec.timeout, TIMEOUT_RANGE)
    _check_range(spec, "EphemeralStorage.Size", spec.ephemeral_storage_mb, EPHEMERAL_RANGE)
    if not isinstance(spec.code_dir, Path):
        raise SpecError(spec.name, "CodeUri", f"must be a folder (got {shown(spec.code_dir)})")
    if not folder_exists(spec.code_dir):
        raise SpecError(
            spec.name, "CodeUri", f"code folder {shown(str(spec.code_dir))} does not exist"
        )
    if not isinstance(spec.environment, dict):
        raise SpecError(
            spec.name, "Environment.Variables", f"must be a map (got {shown(spec.environment)})"
        )
    for key, value in spec.environment.items():
        if not isinstance(key, str) or not ENV_KEY_RE.match(key):
            raise SpecError(spec.name, "Environment.Variables", f"{shown(key)} is not a valid name")
        if key in RESERVED_ENV_VARS:
            raise SpecError(spec.name, "Environment.Variables", f"{key} is reserved by Lambda")
        _check_text(spec, f"Environment.Variables.{key}", value)
    size = len(measured_environment(spec.environment).encode())
    if size > ENV_VARS_MAX_BYTES:
        raise SpecError(
            spec.name, "Environment.Variables", f"{size} bytes in total, over Lambda's 4 KB limit"
        )
    if spec.tracing not in ("Active", "PassThrough"):
        raise SpecError(spec.name, "Tracing", f"{shown(spec.tracing)} is not Active or PassThrough")
    if spec.architecture not in ("x86_64", "arm64"):
        raise SpecError(
            spec.name, "Architectures", f"{shown(spec.architecture)} is not x86_64 or arm64"
        )
    if not isinstance(spec.layers, tuple) or not all(isinstance(p, Path) for p in spec.layers):
        raise SpecError(
            spec.name, "Layers", f"must be a list of folders (got {shown(spec.layers)})"
        )
    if len(spec.layers) > MAX_LAYERS:
        raise SpecError(spec.name, "Layers", f"{len(spec.layers)} layers, Lambda allows 5")
    for layer in spec.layers:
        if not folder_exists(layer):
            raise SpecError(spec.name, "Layers", f"layer folder {shown(str(layer))} does not exist")
    if spec.reserved_concurrency is not None:
        rc = spec.reserved_concurrency
        if isinstance(rc, bool) or not isinstance(rc, int) or rc < 0:
            raise SpecError(spec.name, "ReservedConcurrentExecutions", f"{rc!r} is not >= 0")
    alias = spec.auto_publish_alias
    if alias is not None and (not isinstance(alias, str) or not ALIAS_RE.match(alias)):
        raise SpecError(spec.name, "AutoPublishAlias", f"{shown(alias)} is not an alias name")
    if not isinstance(spec.snap_start, bool):
        raise SpecError(
            spec.name, "SnapStart", f"must be true or false (got {shown(spec.snap_start)})"
        )
    pc = spec.provisioned_concurrency
    if isinstance(pc, bool) or not isinstance(pc, int) or pc < 0:
        raise SpecError(spec.name, "ProvisionedConcurrencyConfig", f"{pc!r} is not >= 1")
    if pc and spec.auto_publish_alias is None:
        raise SpecError(spec.name, "ProvisionedConcurrencyConfig", "needs AutoPublishAlias")
    if pc and spec.reserved_concurrency is not None and pc > spec.reserved_concurrency:
        raise SpecError(
            spec.name,
            "ProvisionedConcurrencyConfig",
            f"{pc} is more than ReservedConcurrentExecutions ({spec.reserved_concurrency})",
        )
    retries = spec.max_retry_attempts
    if isinstance(retries, bool) or not isinstance(retries, int) or retries not in (0, 1, 2):
        raise SpecError(
            spec.name,
            "EventInvokeConfig.MaximumRetryAttempts",
            f"{shown(retries)} is not 0, 1 or 2",
        )
    _check_range(
        spec, "EventInvokeConfig.MaximumEventAgeInSeconds", spec.max_event_age_s, (60, 21600)
    )
    if not isinstance(spec.log_format, str) or spec.log_format not in ("Text", "JSON"):
        raise SpecError(
            spec.name, "LoggingConfig.LogFormat", f"{shown(spec.log_format)} is not Text or JSON"
        )
    if spec.application_log_level is not None:
        if spec.log_format != "JSON":
            raise SpecError(
                spec.name, "LoggingConfig.ApplicationLogLevel", "only applies with LogFormat JSON"
            )
        level = spec.application_log_level
        if not isinstance(level, str) or level not in LOG_LEVELS:
            raise SpecError(
                spec.name,
                "LoggingConfig.ApplicationLogLevel",
                f"{shown(level)} is not a log level ({', '.join(LOG_LEVELS)})",
            )
    return spec
