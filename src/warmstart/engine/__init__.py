"""The execution engine: environments, pools, concurrency and invocations."""

from .environment import Environment, InitOutcome, Request, Response
from .limits import Isolation, detect
from .result import InvokeResult
from .service import Service

__all__ = [
    "Environment",
    "InitOutcome",
    "InvokeResult",
    "Isolation",
    "Request",
    "Response",
    "Service",
    "detect",
]
