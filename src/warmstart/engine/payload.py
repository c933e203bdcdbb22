"""Invoke payloads as Lambda's front end reads them, with its answers for what it refuses.

Lambda parses every request body with Jackson before a function sees it, and answers 400
InvalidRequestContentException for what Jackson refuses: text that is not JSON, invalid UTF-8,
the NaN/Infinity literals Python's json module would accept, nesting deeper than Jackson's
`StreamReadConstraints` allow (1,000 levels). The messages are Jackson's, behind Lambda's prefix.

The check is one parse on the invoke path: the C scanner json.loads uses, with a hook for the
three non-standard constants (called only when one appears). Only a body that fails it, or one
nested more than 1,000 deep that it took, takes the slow path that says what is wrong and where.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from json import scanner
from typing import Any

from ..errors import InvalidRequestContentError
from .runtime import jsonfast

__all__ = ["MAX_DEPTH", "PREFIX", "dumps", "parse"]

MAX_DEPTH = 1000  # Jackson's StreamReadConstraints.DEFAULT_MAX_DEPTH
PREFIX = "Could not parse request body into json: Could not parse payload into json: "
_SNIPPET = 500  # Jackson quotes this much of the source in its messages
_WS = " \t\n\r"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]
_CONSTANT = re.compile(rb"-?Infinity|NaN")
_TOO_DEEP = (  # Jackson stops at the first level too many
    f"Document nesting depth ({MAX_DEPTH + 1}) exceeds the maximum allowed ({MAX_DEPTH}, "
    "from `StreamReadConstraints.getMaxNestingDepth()`)"
)
_strict_dumps = jsonfast.make_dumps(allow_nan=False)
_COUNTS_AGAINST_LIMIT = sys.version_info < (3, 12)
_deeper_lock = threading.Lock()


class _NonStandard(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse(token: str) -> Any:
    raise _NonStandard(token)


_scan = scanner.make_scanner(json.JSONDecoder(parse_constant=_refuse))  # type: ignore[arg-type]


def parse(data: bytes) -> Any:
    """The JSON document in `data`, or InvalidRequestContentError with Lambda's message.

    Example: parse(b'{"a": NaN}') raises InvalidRequestContentError("Could not parse request
    body into json: Could not parse payload into json: Non-standard token 'NaN': ...").
    """
    try:
        s = data.decode()
        start = 0
        while start < len(s) and s[start] in _WS:
            start += 1
        bounded = _bounded()  # (the scan holds the GIL: the limit cannot change meanwhile)
        obj, end = _scan(s, start)
        if end == len(s) or not s[end:].strip(_WS):
            if not bounded and _may_be_deep(data) and _deeper_than(obj, MAX_DEPTH):
                _check_depth(data)
            return obj
    except (StopIteration, UnicodeDecodeError, ValueError, RecursionError):
        pass
    return _parse_slowly(data)


def dumps(event: Any) -> bytes:
    """An event as the JSON an Invoke request would carry; refused as Lambda would refuse it.

    Example: dumps({"a": float("nan")}) raises InvalidRequestContentError (NaN is not JSON).
    """
    try:
        data = _strict_dumps(event).encode()
    except TypeError as e:
        raise InvalidRequestContentError(f"Could not serialize the event as JSON: {e}") from None
    except ValueError as e:
        if "Out of range float" in str(e):  # NaN or an infinity: say it as Lambda would
            try:
                text = jsonfast.dumps(event).encode()
            except ValueError:
                pass
            else:
                parse(text)
        try:  # jsonfast reports any recursion as a circular reference: tell the two apart
            json.dumps(event)
        except RecursionError:
            raise _error(_TOO_DEEP, b"", None) from None
        except ValueError:
            pass
        raise InvalidRequestContentError(f"Could not serialize the event as JSON: {e}") from None
    if not _bounded() and _may_be_deep(data) and _deeper_than(event, MAX_DEPTH):
        _check_depth(data)
    return data


def _bounded() -> bool:
    """Whether the C scanner and encoder cannot go past MAX_DEPTH: before Python 3.12 they
    count nesting against the recursion limit, which is at most MAX_DEPTH unless raised (then
    what they handle needs no depth check of its own, the common case on every invocation)."""
    return _COUNTS_AGAINST_LIMIT and sys.getrecursionlimit() <= MAX_DEPTH


def _may_be_deep(data: bytes) -> bool:
    """A document more than MAX_DEPTH deep has more than 2 * MAX_DEPTH bytes and more than
    MAX_DEPTH opening brackets (counted in C)."""
    return len(data) > 2 * MAX_DEPTH and data.count(b"[") + data.count(b"{") > MAX_DEPTH


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded document nests more than `limit` arrays and objects: one level at a
    time, without recursion."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    inner.append(child)
        level = inner
    return False


def _check_depth(data: bytes) -> None:
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH:
        raise _error(_TOO_DEEP, data, _too_deep_at(data))


def _too_deep_at(data: bytes) -> int:
    depth = 0
    for m in _TOKEN.finditer(data):
        step = _STEP[data[m.start()]]
        depth += step
        if depth > MAX_DEPTH:
            return m.start()
    return len(data)


def _parse_slowly(data: bytes) -> Any:
    """Why `data` is refused, in Jackson's words (or the document: the fast path can fail on
    what is valid, a UTF-16 body or a document just under MAX_DEPTH on Python 3.11)."""
    _check_depth(data)
    try:
        with _deeper():
            return json.loads(data, parse_constant=_refuse)
    except _NonStandard as e:
        text = _STRING.sub(lambda m: b" " * len(m.group()), data)  # positions kept
        found = _CONSTANT.search(text)
        at = found.end() if found else None
        message = (
            f"Non-standard token '{e.token}': "
            "enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
        )
        raise _error(message, data, at) from None
    except UnicodeDecodeError as e:
        kind = "start" if e.reason == "invalid start byte" else "middle"
        byte = data[min(e.end, len(data) - 1)] if kind == "middle" else data[e.start]
        raise _error(f"Invalid UTF-8 {kind} byte 0x{byte:02x}", data, e.start + 1) from None
    except json.JSONDecodeError as e:
        raise _error(e.msg, data, None, (e.lineno, e.colno)) from None
    except (ValueError, RecursionError) as e:
        raise _error(str(e), data, None) from None


@contextmanager
def _deeper() -> Iterator[None]:
    """Room for MAX_DEPTH nested values (Python 3.11 counts them against the recursion limit)."""
    with _deeper_lock:
        before = sys.getrecursionlimit()
        sys.setrecursionlimit(before + MAX_DEPTH + 100)
        try:
            yield
        finally:
            sys.setrecursionlimit(before)


def _error(
    problem: str, data: bytes, at: int | None, where: tuple[int, int] | None = None
) -> InvalidRequestContentError:
    """Lambda's message: Jackson's problem, then where it is, as Jackson says it."""
    if at is not None:
        line = data.count(b"\n", 0, at) + 1
        where = (line, at - data.rfind(b"\n", 0, at))
    if where is None:
        return InvalidRequestContentError(PREFIX + problem, problem)
    snippet = data[:_SNIPPET].decode("utf-8", "replace")
    cut = f"[truncated {len(data) - _SNIPPET} bytes]" if len(data) > _SNIPPET else ""
    line, column = where
    source = f'(byte[])"{snippet}"{cut}'
    return InvalidRequestContentError(
        f"{PREFIX}{problem}\n at [Source: {source}; line: {line}, column: {column}]",
        f"{problem} (line {line}, column {column})",
    )
