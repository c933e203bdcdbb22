"""Errors warmstart raises. Names follow Lambda's API exceptions where one exists."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ArgumentError",
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
    "one_line",
    "shown",
]


def one_line(text: str, limit: int = 500) -> str:
    """Text from a user's file made fit for one line of an error: control characters escaped,
    long text cut. Example: one_line("a\nb") -> "a\\nb"."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: object, limit: int = 60) -> str:
    """A value as an error quotes it: its repr, cut to `limit` characters (closing its quote).
    Example: shown("x" * 100, 10) -> "'xxxxx...'"."""
    text = repr(value)
    if len(text) <= limit:
        return text
    quote = text[0] if text[0] in "'\"" else ""
    return text[: limit - 4] + "..." + quote


class WarmstartError(Exception):
    """Base of every error warmstart raises on purpose (a user's mistake, a limit)."""


class TemplateError(WarmstartError):
    """The template cannot be read, or says something warmstart cannot use.

    One line: the file, where in it (`Resources.Hello.Properties.MemorySize`, or a line), and the
    rule broken. Example: TemplateError("must be a map (got a list)", "Globals", "template.yaml")
    """

    def __init__(self, problem: str, where: str = "", file: str = "") -> None:
        self.problem = problem
        self.where = where
        self.file = file
        parts = (one_line(p) for p in (file, where, problem) if p)
        super().__init__(": ".join(parts))

    def in_file(self, file: str) -> TemplateError:
        """The same error, naming the file it is about (once)."""
        return self if self.file else TemplateError(self.problem, self.where, file)


class SpecError(WarmstartError):
    """A function definition is invalid; the message names the function and the property."""

    def __init__(self, function: str, prop: str, problem: str) -> None:
        self.function = function
        self.property = prop
        self.problem = problem
        where = one_line(f"Function {function!r}", 100)
        super().__init__(f"{where}: {prop}: {problem}" if prop else f"{where}: {problem}")


class ArgumentError(WarmstartError, TypeError):
    """An argument of the Python API or a setting that is of the wrong type, or not one there is
    (a TypeError too, as Python's own would be)."""


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
