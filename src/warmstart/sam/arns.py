"""Which of a template's functions a Lambda ARN value names (an authorizer's FunctionArn).

A template names a function's ARN with `!GetAtt Fn.Arn` (an Unresolved placeholder here, as
CloudFormation alone knows the ARN), `!Sub ${Fn.Arn}`, or an ARN text built from a `!Ref`
(the logical id, locally) or written out with the function's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..spec import FunctionSpec
from .values import Unresolved

__all__ = ["function_of_arn"]

_ATTRIBUTE = re.compile(r"([A-Za-z0-9]+)\.Arn")
_ARN = re.compile(r"arn:[\w-]+:lambda:[\w-]*:\d*:function:([\w-]+)(?::([\w$-]+))?")


def function_of_arn(
    value: Any, functions: Iterable[FunctionSpec]
) -> tuple[FunctionSpec, str | None] | None:
    """(the function, its qualifier or None) that the value names; None if no function of the
    template is named.

    Example: function_of_arn(Unresolved("Fn::GetAtt Auth.Arn", "Auth.Arn"), specs) -> (Auth, None)
    """
    text = value.placeholder if isinstance(value, Unresolved) else value
    if not isinstance(text, str):
        return None
    qualifier = None
    m = _ATTRIBUTE.fullmatch(text)
    if m:
        name = m.group(1)
    else:
        m = _ARN.fullmatch(text)
        if not m:
            return None
        name, qualifier = m.group(1), m.group(2)
    for spec in functions:
        if name in (spec.name, spec.logical_id):
            return spec, qualifier
    return None
