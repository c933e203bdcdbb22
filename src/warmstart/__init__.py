"""warmstart: AWS Lambda's execution model on your machine, and the tools to measure it.

Example:
    from warmstart import Runtime
    with Runtime.from_template("template.yaml") as rt:
        print(rt.invoke("Hello", {"k": "v"}).payload)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    EngineError,
    InvalidParameterValueError,
    InvalidRequestContentError,
    RequestTooLargeError,
    ResourceConflictError,
    ResourceNotFoundError,
    SpecError,
    TemplateError,
    TooManyRequestsError,
    UnsupportedRuntimeError,
    WarmstartError,
)

if TYPE_CHECKING:
    from .api import Runtime
    from .config import Config
    from .engine.result import InvokeResult
    from .observe.report import Report, parse_report
    from .sam import Template, load_template
    from .spec import FunctionSpec

__version__ = "0.1.0"

# Imported on first use: `import warmstart.observe` (the records writer's process) stays light.
_LAZY = {
    "Config": ".config",
    "FunctionSpec": ".spec",
    "InvokeResult": ".engine.result",
    "Report": ".observe.report",
    "Runtime": ".api",
    "Template": ".sam",
    "load_template": ".sam",
    "parse_report": ".observe.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Config",
    "EngineError",
    "FunctionSpec",
    "InvalidParameterValueError",
    "InvalidRequestContentError",
    "InvokeResult",
    "Report",
    "RequestTooLargeError",
    "ResourceConflictError",
    "ResourceNotFoundError",
    "Runtime",
    "SpecError",
    "Template",
    "TemplateError",
    "TooManyRequestsError",
    "UnsupportedRuntimeError",
    "WarmstartError",
    "__version__",
    "load_template",
    "parse_report",
]
