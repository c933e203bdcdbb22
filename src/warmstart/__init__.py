"""warmstart: AWS Lambda's execution model on your machine, and the tools to measure it.

Example:
    from warmstart import Runtime
    with Runtime.from_template("template.yaml") as rt:
        print(rt.invoke("Hello", {"k": "v"}).payload)
"""

from .api import Runtime
from .config import Config
from .engine.result import InvokeResult
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
from .observe.report import Report, parse_report
from .sam import Template, load_template
from .spec import FunctionSpec

__version__ = "0.1.0"

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
