"""What a template's values may be, and the one-line errors when they are not what is expected.

Every check names where the value is (`Resources.Hello.Properties.MemorySize`) and the rule,
with what was found: `must be a map (got a list)`.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import TemplateError, shown

__all__ = [
    "NO_VALUE",
    "Unresolved",
    "describe",
    "expect_int",
    "expect_list",
    "expect_map",
    "expect_str",
    "is_scalar",
    "text_of",
]


_WHOLE = re.compile(r"\s*-?[0-9]{1,18}\s*")


class Unresolved:
    """A value only CloudFormation can compute (Fn::GetAtt, Fn::ImportValue, ...).

    Example: Unresolved("Fn::GetAtt Table.Arn", "Table.Arn")
    """

    def __init__(self, what: str, placeholder: str) -> None:
        self.what = what
        self.placeholder = placeholder

    def __repr__(self) -> str:
        return f"<unresolved {self.what}>"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()  # Ref AWS::NoValue: the property disappears


def describe(value: Any, limit: int = 60) -> str:
    """How an error shows a value: short, one line. Example: describe([1]) -> 'a list'."""
    if isinstance(value, Unresolved):
        return f"{value.what}, which cannot be resolved locally"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return shown(value, limit)


def is_scalar(value: Any) -> bool:
    """Text or a number (a bool is an int). Example: is_scalar("a") -> True"""
    return isinstance(value, (str, int, float))


def text_of(value: Any) -> str:
    """A scalar as CloudFormation turns it into text. Example: text_of(True) -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expect_map(value: Any, where: str, what: str = "a map") -> dict[str, Any]:
    """The value as a map; nothing (an empty YAML value) is an empty one.

    Example: expect_map([1], "Globals") raises "Globals: must be a map (got a list)"
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TemplateError(f"must be {what} (got {describe(value)})", where)
    return value


def expect_list(value: Any, where: str, what: str = "a list") -> list[Any]:
    """Example: expect_list("arm64", "Architectures", "[x86_64] or [arm64]") raises."""
    if not isinstance(value, list):
        raise TemplateError(f"must be {what} (got {describe(value)})", where)
    return value


def expect_str(value: Any, where: str, what: str = "a text") -> str:
    """Example: expect_str(5, "Handler") raises "Handler: must be a text (got 5)"."""
    if not isinstance(value, str):
        raise TemplateError(f"must be {what} (got {describe(value)})", where)
    return value


def expect_int(value: Any, where: str, lo: int, hi: int, why: str = "") -> int:
    """A whole number in lo..hi; parameters make numbers text, so "512" is one too.

    Example: expect_int("big", "MemorySize", 128, 10240) raises
    "MemorySize: must be an integer from 128 to 10240 (got 'big')"
    """
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(
            f"must be an integer from {lo} to {hi}{why} (got {describe(value)})", where
        )
    if not lo <= value <= hi:
        raise TemplateError(f"{value} is outside {lo}..{hi}{why}", where)
    return value
