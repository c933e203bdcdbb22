"""Errors warmstart raises. Names follow Lambda's API exceptions where one exists."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "EngineError",
    "InvalidParameterValueError",
    "InvalidRequestContentError",
    "RequestTooLargeError",
    "ResourceConflictError",
    "ResourceNotFoundError",
    "SpecError",
    "StateDatabaseError",
    "TemplateError",
    "TooManyRequestsError",
    "UnsupportedRuntimeError",
    "WarmstartError",
]


class WarmstartError(Exception):
    """Base of every error warmstart raises on purpose (a user's mistake, a limit)."""


class TemplateError(WarmstartError):
    """The template cannot be read or parsed."""


class SpecError(WarmstartError):
    """A function definition is invalid; the message names the function and the property."""

    def __init__(self, function: str, prop: str, problem: str) -> None:
        self.function = function
        self.property = prop
        self.problem = problem
        where = f"Function {function!r}"
        super().__init__(f"{where}: {prop}: {problem}" if prop else f"{where}: {problem}")


class ResourceNotFoundError(WarmstartError):
    """No such function, version or alias."""


class ResourceConflictError(WarmstartError):
    """The resource already exists, or is in use."""


class InvalidParameterValueError(WarmstartError):
    """A value is not one Lambda accepts (a limit exceeded, a setting that does not apply...)."""


class TooManyRequestsError(WarmstartError):
    """The invocation was throttled.

    `reason` is Lambda's: ReservedFunctionConcurrentInvocationLimitExceeded or
    ConcurrentInvocationLimitExceeded.
    """

    def __init__(self, reason: str, message: str, retry_after_s: int = 1) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(message)


class RequestTooLargeError(WarmstartError):
    """The request payload is over Lambda's limit (6 MB synchronous, 1 MB asynchronous)."""


class InvalidRequestContentError(WarmstartError):
    """The event could not be encoded or parsed as JSON.

    The message is Lambda's; `detail` says what is wrong and where, without Lambda's wording
    around it (for a command line).
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


class UnsupportedRuntimeError(WarmstartError):
    """The function's runtime is not one warmstart can run (yet)."""


class StateDatabaseError(WarmstartError):
    """The state database cannot be used: corrupt, not a database, not readable, or its disk full.

    The message names the file, what is wrong and what to do; `full` is True when the disk is
    full (records wait until there is room).
    """

    def __init__(self, path: Path, problem: str, advice: str, full: bool = False) -> None:
        self.path = path
        self.full = full
        super().__init__(f"{path}: {problem}: {advice}")


class EngineError(WarmstartError):
    """warmstart itself could not do what was asked (an environment could not be started...)."""
