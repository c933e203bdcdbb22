"""CloudFormation's intrinsic functions, over what one machine knows.

Parameters (their values), pseudo parameters, Conditions and Mappings resolve; what only
CloudFormation knows (Fn::GetAtt, Fn::ImportValue, ...) becomes an Unresolved placeholder. Each
function checks the shape of its arguments first, and resolution is bounded in depth (conditions
referring to conditions included) and in steps.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from ..errors import TemplateError
from .values import (
    NO_VALUE,
    Unresolved,
    describe,
    expect_list,
    expect_map,
    expect_str,
    is_scalar,
    text_of,
)

__all__ = ["Resolver", "function_of"]

MAX_DEPTH = 100  # a value's nesting plus that of the conditions and values it refers to
MAX_STEPS = 1_000_000  # values visited while resolving a template
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "warmstart",
    "AWS::StackId": "arn:aws:cloudformation:{region}:{account}:stack/warmstart/"
    "00000000-0000-0000-0000-000000000000",
    "AWS::NotificationARNs": [],
}
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_CONDITION = "a condition: Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition"


def function_of(value: Any) -> str | None:
    """The intrinsic function a value calls, or None for plain data.

    Example: function_of({"Fn::Join": ["", []]}) -> "Fn::Join"
    """
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in ("Ref", "Condition") or key.startswith("Fn::"):
            return str(key)
    return None


def _count(items: list[Any]) -> str:
    return "1 item" if len(items) == 1 else f"{len(items)} items"


def _first_unresolved(value: Any) -> Unresolved | None:
    if isinstance(value, Unresolved):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _first_unresolved(item)
        if found is not None:
            return found
    return None


class Resolver:
    """Resolves values of one template. Example: Resolver(...).resolve({"Ref": "Stage"}, "X")"""

    def __init__(
        self,
        *,
        parameters: dict[str, str],
        list_parameters: set[str],
        declared: set[str],
        resources: dict[str, Any],
        mappings: dict[str, Any],
        conditions: dict[str, Any],
        region: str,
        account: str,
    ) -> None:
        self.parameters = parameters
        self.list_parameters = list_parameters
        self.declared = declared
        self.resources = resources
        self.mappings = mappings
        self.conditions = conditions
        self.region = region
        self.account = account
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self._depth = 0
        self._steps = 0
        self._functions: dict[str, Callable[[Any, str], Any]] = {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::GetAZs": self._get_azs,
            "Fn::ImportValue": self._import_value,
            "Fn::Cidr": self._cidr,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Fn::ToJsonString": self._to_json_string,
            "Fn::Length": self._length,
            "Fn::Transform": self._transform,
        }

    # -- walking ---------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """The value with every intrinsic function in it applied; NO_VALUE where it vanishes.

        Example: resolver.resolve({"Fn::Join": ["-", ["a", "b"]]}, "Outputs.X") -> "a-b"
        """
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise TemplateError(f"takes more than {MAX_STEPS:,} steps to resolve", where)
        if not isinstance(value, (dict, list)):
            return value
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise TemplateError(
                    f"nested more than {MAX_DEPTH} levels deep, with the conditions and values "
                    "it refers to",
                    where,
                )
            name = function_of(value)
            if name is not None and isinstance(value, dict):
                return self._call(name, value[name], where)
            if isinstance(value, list):
                items = (self.resolve(v, f"{where}[{i}]") for i, v in enumerate(value))
                return [v for v in items if v is not NO_VALUE]
            out = {}
            for k, v in value.items():
                r = self.resolve(v, f"{where}.{k}")
                if r is not NO_VALUE:
                    out[k] = r
            return out
        finally:
            self._depth -= 1

    def _call(self, name: str, arg: Any, where: str) -> Any:
        function = self._functions.get(name)
        if function is None:
            if name.startswith("Fn::ForEach::"):
                raise TemplateError("Fn::ForEach (AWS::LanguageExtensions) is not supported", where)
            raise TemplateError(f"{name} is not a CloudFormation function", where)
        return function(arg, where)

    @staticmethod
    def _args(name: str, arg: Any, where: str, shape: str, counts: range) -> list[Any]:
        """The function's argument list, checked against how many it takes."""
        if not isinstance(arg, list) or len(arg) not in counts:
            got = _count(arg) if isinstance(arg, list) else describe(arg)
            raise TemplateError(f"{name} takes {shape} (got {got})", where)
        return arg

    def _text_arg(self, name: str, value: Any, where: str, what: str = "a text") -> Any:
        """A resolved argument that must be text (a number is taken as its text)."""
        v = self.resolve(value, where)
        if isinstance(v, Unresolved):
            return v
        if not is_scalar(v):
            raise TemplateError(f"{name} takes {what} (got {describe(v)})", where)
        return text_of(v)

    # -- conditions ------------------------------------------------------------------------

    def condition(self, name: Any, where: str) -> bool:
        """A named condition's value, each evaluated once; a cycle is an error naming it.

        Example: resolver.condition("IsProd", "Resources.Hello.Condition") -> False
        """
        name = expect_str(name, where, "the name of a condition")
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.conditions:
            raise TemplateError(f"condition {name!r} is not defined in Conditions", where)
        if name in self._evaluating:
            cycle = [*self._evaluating[self._evaluating.index(name) :], name]
            raise TemplateError(
                f"the conditions refer to each other in a circle: {' -> '.join(cycle)}",
                f"Conditions.{name}",
            )
        self._evaluating.append(name)
        try:
            value = self.truth(self.conditions[name], f"Conditions.{name}")
        finally:
            self._evaluating.pop()
        self._conditions[name] = value
        return value

    def truth(self, value: Any, where: str) -> bool:
        v = self.resolve(value, where)
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if isinstance(v, Unresolved):
            raise TemplateError(f"a condition cannot depend on {describe(v)}", where)
        raise TemplateError(f"must be {_CONDITION} (got {describe(v)})", where)

    def _if(self, arg: Any, where: str) -> Any:
        cond, yes, no = self._args(
            "Fn::If", arg, where, "[condition name, value if true, value if false]", range(3, 4)
        )
        return self.resolve(yes if self.condition(cond, where) else no, where)

    def _equals(self, arg: Any, where: str) -> Any:
        a, b = (
            self.resolve(v, where)
            for v in self._args("Fn::Equals", arg, where, "[value, value]", range(2, 3))
        )
        unresolved = _first_unresolved([a, b])
        if unresolved is not None:
            return unresolved
        if is_scalar(a) and is_scalar(b):
            return text_of(a) == text_of(b)
        return bool(a == b)

    def _not(self, arg: Any, where: str) -> bool:
        (cond,) = self._args("Fn::Not", arg, where, f"[{_CONDITION}]", range(1, 2))
        return not self.truth(cond, where)

    def _and(self, arg: Any, where: str) -> bool:
        conds = self._args("Fn::And", arg, where, "a list of 2 to 10 conditions", range(2, 11))
        return all([self.truth(c, where) for c in conds])

    def _or(self, arg: Any, where: str) -> bool:
        conds = self._args("Fn::Or", arg, where, "a list of 2 to 10 conditions", range(2, 11))
        return any([self.truth(c, where) for c in conds])

    # -- references ------------------------------------------------------------------------

    def ref(self, name: str, where: str) -> Any:
        if name in self.parameters:
            value = self.parameters[name]
            return value.split(",") if name in self.list_parameters else value
        if name == "AWS::Region":
            return self.region
        if name == "AWS::AccountId":
            return self.account
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            v = PSEUDO[name]
            return v.format(region=self.region, account=self.account) if isinstance(v, str) else v
        if name in self.resources:
            return name  # a resource's Ref is its physical id; locally, the logical id
        if name in self.declared:
            raise TemplateError(
                f"parameter {name} has no Default: pass it with --parameter-overrides {name}=VALUE",
                where,
            )
        raise TemplateError(f"Ref {name!r}: no parameter or resource has that name", where)

    def _ref(self, arg: Any, where: str) -> Any:
        name = self.resolve(arg, where)
        if not isinstance(name, str):
            raise TemplateError(
                f"Ref takes the name of a parameter or resource (got {describe(name)})", where
            )
        return self.ref(name, where)

    def _get_att(self, arg: Any, where: str) -> Unresolved:
        shape = "[resource, attribute] or 'Resource.Attribute'"
        if isinstance(arg, str):
            arg = arg.split(".", 1)
            if len(arg) != 2:
                raise TemplateError(f"Fn::GetAtt takes {shape} (got {describe(arg[0])})", where)
        resource, attribute = self._args("Fn::GetAtt", arg, where, shape, range(2, 3))
        attribute = self.resolve(attribute, where)
        if not isinstance(resource, str) or not isinstance(attribute, str):
            raise TemplateError(f"Fn::GetAtt takes {shape} (got {describe(arg)})", where)
        if resource not in self.resources:
            raise TemplateError(f"Fn::GetAtt: no resource is named {resource!r}", where)
        return Unresolved(f"Fn::GetAtt {resource}.{attribute}", f"{resource}.{attribute}")

    def _find_in_map(self, arg: Any, where: str) -> Any:
        args = self._args(
            "Fn::FindInMap",
            arg,
            where,
            "[map name, top-level key, second-level key] (and {DefaultValue: value})",
            range(3, 5),
        )
        keys = [self._text_arg("Fn::FindInMap", k, where, "text keys") for k in args[:3]]
        unresolved = _first_unresolved(keys)
        if unresolved is not None:
            return unresolved
        default = None
        if len(args) == 4:
            option = args[3]
            if not isinstance(option, dict) or set(option) != {"DefaultValue"}:
                raise TemplateError(
                    f"Fn::FindInMap's fourth item must be {{DefaultValue: value}} "
                    f"(got {describe(option)})",
                    where,
                )
            default = option
        value: Any = self.mappings
        for depth, key in enumerate(keys):
            if not isinstance(value, dict) or key not in value:
                if default is not None:
                    return self.resolve(default["DefaultValue"], where)
                path = ".".join(keys[:depth])
                inside = f"Mappings.{path}" if path else "Mappings"
                raise TemplateError(f"Fn::FindInMap: {inside} has no {key!r}", where)
            value = value[key]
        return value

    # -- text ------------------------------------------------------------------------------

    def _sub(self, arg: Any, where: str) -> Any:
        shape = "a text, or [text, {variable: value}]"
        if isinstance(arg, list):
            text, variables = self._args("Fn::Sub", arg, where, shape, range(2, 3))
            if not isinstance(text, str) or not isinstance(variables, dict):
                raise TemplateError(f"Fn::Sub takes {shape} (got {describe(arg)})", where)
            values = {k: self.resolve(v, f"{where}.{k}") for k, v in variables.items()}
        elif isinstance(arg, str):
            text, values = arg, {}
        else:
            raise TemplateError(f"Fn::Sub takes {shape} (got {describe(arg)})", where)
        unresolved: list[Unresolved] = []

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                v = values[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                v = Unresolved(f"${{{name}}}", name)
            else:
                v = self.ref(name, where)
            if isinstance(v, Unresolved):
                unresolved.append(v)
                return v.placeholder
            if not is_scalar(v):
                raise TemplateError(f"Fn::Sub: ${{{name}}} is {describe(v)}, not a text", where)
            return text_of(v)

        out = _SUB_VARIABLE.sub(one, text)
        if unresolved:
            return Unresolved(f"Fn::Sub {describe(text)} (with {unresolved[0].what})", out)
        return out

    def _join(self, arg: Any, where: str) -> Any:
        shape = "[delimiter, [values]]"
        delimiter, items = self._args("Fn::Join", arg, where, shape, range(2, 3))
        delimiter = self._text_arg("Fn::Join", delimiter, where, "a text delimiter")
        items = self.resolve(items, where)
        if isinstance(delimiter, Unresolved) or isinstance(items, Unresolved):
            return delimiter if isinstance(delimiter, Unresolved) else items
        expect_list(items, where, "a list of values to join")
        parts = []
        for item in items:
            if isinstance(item, Unresolved):
                parts.append(item.placeholder)
            elif is_scalar(item):
                parts.append(text_of(item))
            else:
                raise TemplateError(f"Fn::Join can join text, not {describe(item)}", where)
        joined = delimiter.join(parts)
        unresolved = _first_unresolved(items)
        if unresolved is not None:
            return Unresolved(f"Fn::Join (with {unresolved.what})", joined)
        return joined

    def _select(self, arg: Any, where: str) -> Any:
        index, items = self._args("Fn::Select", arg, where, "[index, [values]]", range(2, 3))
        index = self.resolve(index, where)
        items = self.resolve(items, where)
        unresolved = _first_unresolved([index]) or (
            items if isinstance(items, Unresolved) else None
        )
        if unresolved is not None:
            return unresolved
        if isinstance(index, str) and index.isascii() and index.isdigit():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TemplateError(
                f"Fn::Select's index must be a whole number (got {describe(index)})", where
            )
        expect_list(items, where, "a list to select from")
        if not 0 <= index < len(items):
            raise TemplateError(
                f"Fn::Select: index {index} is outside the list of {len(items)} values", where
            )
        return items[index]

    def _split(self, arg: Any, where: str) -> Any:
        delimiter, source = (
            self._text_arg("Fn::Split", v, where)
            for v in self._args("Fn::Split", arg, where, "[delimiter, text]", range(2, 3))
        )
        unresolved = _first_unresolved([delimiter, source])
        if unresolved is not None:
            return unresolved
        if not delimiter:
            raise TemplateError("Fn::Split's delimiter must not be empty", where)
        return source.split(delimiter)

    def _base64(self, arg: Any, where: str) -> Any:
        v = self._text_arg("Fn::Base64", arg, where)
        if isinstance(v, Unresolved):
            return v
        return base64.b64encode(v.encode()).decode()

    def _to_json_string(self, arg: Any, where: str) -> Any:
        v = self.resolve(arg, where)
        if not isinstance(v, (dict, list)):
            raise TemplateError(
                f"Fn::ToJsonString takes a map or a list (got {describe(v)})", where
            )
        unresolved = _first_unresolved(v)
        if unresolved is not None:
            return unresolved
        return json.dumps(v, separators=(",", ":"))

    def _length(self, arg: Any, where: str) -> Any:
        v = self.resolve(arg, where)
        if isinstance(v, Unresolved):
            return v
        return len(expect_list(v, where, "a list (the argument of Fn::Length)"))

    # -- what only CloudFormation knows ----------------------------------------------------

    def _get_azs(self, arg: Any, where: str) -> Any:
        region = self._text_arg("Fn::GetAZs", arg, where, "a region name, or '' for this one")
        if isinstance(region, Unresolved):
            return region
        return [f"{region or self.region}{zone}" for zone in "abc"]

    def _import_value(self, arg: Any, where: str) -> Unresolved:
        name = self._text_arg("Fn::ImportValue", arg, where, "the name of an exported value")
        shown = name.placeholder if isinstance(name, Unresolved) else name
        return Unresolved(f"Fn::ImportValue {shown}", "<Fn::ImportValue>")

    def _cidr(self, arg: Any, where: str) -> Unresolved:
        args = self._args("Fn::Cidr", arg, where, "[ip block, count, cidr bits]", range(3, 4))
        for v in args:
            self._text_arg("Fn::Cidr", v, where, "[ip block, count, cidr bits]")
        return Unresolved("Fn::Cidr", "<Fn::Cidr>")

    def _transform(self, arg: Any, where: str) -> Unresolved:
        spec = expect_map(arg, where, "{Name: macro, Parameters: {...}} (Fn::Transform)")
        name = expect_str(spec.get("Name"), f"{where}.Name", "the name of a macro")
        return Unresolved(f"Fn::Transform {name}", "<Fn::Transform>")
