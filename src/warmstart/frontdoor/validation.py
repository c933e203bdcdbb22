"""Lambda API requests checked against botocore's model of the API, refused in AWS's words.

botocore's service model holds every constraint Lambda's front end applies to an operation's
input (types, required members, lengths, ranges, patterns, enums); AWS answers a request that
breaks one with 400 and "1 validation error detected: Value '512' at 'memorySize' failed to
satisfy constraint: Member must have value greater than or equal to 128". One small walk over
the model answers the same way for every operation. The rules Lambda adds on top (reserved
environment variables, their 4 KB) follow, with Lambda's messages.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from botocore.loaders import Loader

from ..errors import InvalidParameterValueError
from ..spec import (
    ENV_VARS_MAX_BYTES,
    EPHEMERAL_RANGE,
    MEMORY_RANGE,
    RESERVED_ENV_VARS,
    TIMEOUT_RANGE,
    measured_environment,
)

__all__ = ["check_environment", "check_input", "preload"]

# Lambda's limits for the functions it runs itself; the model's maxima are wider, as they also
# cover functions on Lambda Managed Instances (32 GB, 90 minutes).
LIMITS = {
    "MemorySize": MEMORY_RANGE,
    "Timeout": TIMEOUT_RANGE,
    "EphemeralStorageSize": EPHEMERAL_RANGE,
}
INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_TYPES = {
    "string": "a string",
    "blob": "a base64-encoded string",
    "integer": "an integer",
    "long": "an integer",
    "boolean": "a boolean",
    "double": "a number",
    "structure": "an object",
    "list": "a list",
    "map": "an object",
}
_SHOWN = 256  # of a value, in a message
_DIGITS = re.compile("-?[0-9]{1,18}")  # longer is no number of Lambda's (and int() refuses it)


@functools.cache
def _model() -> dict[str, Any]:
    model: dict[str, Any] = Loader().load_service_model("lambda", "service-2")
    return model


def preload() -> None:
    """Read botocore's model now (about 0.3 s), e.g. in a thread, not in the first request.

    Example: threading.Thread(target=preload, daemon=True).start()
    """
    _model()


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # Java's Unicode classes, as Python's re spells them near enough (letters, spaces, digits)
    return re.compile(pattern.replace(r"\p{L}\p{Z}\p{N}", r"\w\s"))


def check_input(
    operation: str, body: dict[str, Any], uri: dict[str, str], query: dict[str, str]
) -> dict[str, Any]:
    """The operation's input members, taken from the path, the query string and the body as the
    model places them, checked against the model. Raises InvalidParameterValueError naming every
    problem, as AWS does; members the model does not know are left out, as AWS ignores them.

    Example: check_input("PutFunctionConcurrency", {"ReservedConcurrentExecutions": -1},
    {"FunctionName": "F"}, {}) raises InvalidParameterValueError("1 validation error detected:
    Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have
    value greater than or equal to 0")
    """
    model = _model()
    shape = model["shapes"][model["operations"][operation]["input"]["shape"]]
    values: dict[str, Any] = {}
    for member, ref in shape["members"].items():
        where = ref.get("location")
        key = ref.get("locationName", member)
        if where == "uri":
            value: Any = uri.get(key)
        elif where == "querystring":
            value = query.get(key)
            if value is not None and _DIGITS.fullmatch(value):
                kind = model["shapes"][ref["shape"]]["type"]
                value = int(value) if kind in INT_RANGE else value
        elif where is None:
            value = body.get(member)
        else:  # headers: not part of a management call's input here
            continue
        if value is not None:
            values[member] = value
    errors: list[str] = []
    checked = _check_structure(shape, values, "", errors)
    if errors:
        n = len(errors)
        raise InvalidParameterValueError(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors)
        )
    return checked


def check_environment(variables: dict[str, str]) -> None:
    """Lambda's own rules for environment variables, past the model's: no reserved keys, and
    4 KB at most, measured on the variables as JSON (the string Lambda's message quotes).

    Example: check_environment({"AWS_REGION": "x"}) raises InvalidParameterValueError.
    """
    prefix = "Lambda was unable to configure your environment variables because the environment "
    reserved = [k for k in variables if k in RESERVED_ENV_VARS]
    if reserved:
        raise InvalidParameterValueError(
            f"{prefix}variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = measured_environment(variables)
    if len(measured.encode()) > ENV_VARS_MAX_BYTES:
        raise InvalidParameterValueError(
            f"{prefix}variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured}"
        )


def _check_structure(
    shape: dict[str, Any], values: dict[str, Any], path: str, errors: list[str]
) -> dict[str, Any]:
    """The structure's members as checked, without nulls (JSON's null is an absent member)."""
    members = shape.get("members", {})
    for member in shape.get("required", []):
        if values.get(member) is None:
            errors.append(
                f"Value null at '{_join(path, member)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    return {
        member: _check(value, members[member]["shape"], _join(path, member), errors)
        for member, value in values.items()
        if member in members and value is not None
    }


def _check(value: Any, name: str, path: str, errors: list[str]) -> Any:
    shape = _model()["shapes"][name]
    kind = shape["type"]
    if not _is(value, kind):
        errors.append(_message(value, path, shape, f"Member must be {_TYPES.get(kind, kind)}"))
        return value
    if kind == "structure":
        return _check_structure(shape, value, path, errors)
    for problem in _problems(value, name, shape):
        errors.append(_message(value, path, shape, problem))
    if kind == "list":
        member = shape["member"]["shape"]
        if _model()["shapes"][member]["type"] == "structure":
            return [
                _check(item, member, f"{path}.{i}.member", errors)
                for i, item in enumerate(value, 1)
            ]
        for problem in sorted({p for item in value for p in _inner(item, member)}):
            errors.append(
                _message(value, path, shape, f"Member must satisfy constraint: [{problem}]")
            )
    elif kind == "map":
        for part, which in (("key", "Map keys"), ("value", "Map value")):
            inner = shape[part]["shape"]
            items = value.keys() if part == "key" else value.values()
            for problem in sorted({p for item in items for p in _inner(item, inner)}):
                errors.append(
                    _message(value, path, shape, f"{which} must satisfy constraint: [{problem}]")
                )
    return value


def _inner(value: Any, name: str) -> list[str]:
    """What is wrong with one member of a list or map (scalars only)."""
    shape = _model()["shapes"][name]
    if not _is(value, shape["type"]):
        return [f"Member must be {_TYPES.get(shape['type'], shape['type'])}"]
    return _problems(value, name, shape)


def _is(value: Any, kind: str) -> bool:
    if kind in ("string", "blob"):
        return isinstance(value, str)
    if kind in INT_RANGE:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "double":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if kind in ("structure", "map"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return True  # timestamp: no operation warmstart answers takes one


def _problems(value: Any, name: str, shape: dict[str, Any]) -> list[str]:
    """The constraints a scalar, list or map breaks, in AWS's words."""
    out = []
    kind = shape["type"]
    if kind in ("string", "list", "map"):
        if "min" in shape and len(value) < shape["min"]:
            out.append(f"Member must have length greater than or equal to {shape['min']}")
        if "max" in shape and len(value) > shape["max"]:
            out.append(f"Member must have length less than or equal to {shape['max']}")
    if kind in INT_RANGE or kind == "double":
        lo, hi = LIMITS.get(name, (shape.get("min"), shape.get("max")))
        lo_int, hi_int = INT_RANGE.get(kind, (None, None))
        lo = lo if lo is not None else lo_int
        hi = hi if hi is not None else hi_int
        if lo is not None and value < lo:
            out.append(f"Member must have value greater than or equal to {lo}")
        if hi is not None and value > hi:
            out.append(f"Member must have value less than or equal to {hi}")
    if kind == "string":
        if "pattern" in shape and not _pattern(shape["pattern"]).fullmatch(value):
            out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
        if "enum" in shape and value not in shape["enum"]:
            out.append(f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
    return out


def _message(value: Any, path: str, shape: dict[str, Any], problem: str) -> str:
    if shape.get("sensitive"):
        return f"Value at '{path}' failed to satisfy constraint: {problem}"
    shown = _show(value)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "..."
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {problem}"


def _show(value: Any, depth: int = 0) -> str:
    """A value as Java's toString writes it, as AWS's messages do (deep values elided)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)) and depth > 8:
        return "..."
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v, depth + 1)}" for k, v in value.items()) + "}"
    return str(value)


def _join(path: str, member: str) -> str:
    name = member[:1].lower() + member[1:]  # AWS names members lowerCamelCase in messages
    return f"{path}.{name}" if path else name
