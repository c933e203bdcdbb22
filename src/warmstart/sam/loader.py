"""A template's sections (Parameters, Conditions, Mappings, Globals, Resources) into functions.

Merges Globals.Function the way the SAM transform does, resolves what one machine can, and turns
each function into a validated FunctionSpec. Every problem is a TemplateError naming the file,
where in it, and the rule: `template.yaml: Resources.Hello.Properties.Timeout: 0 is outside 1..900`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from ..spec import ALIAS_RE, FunctionSpec, folder_exists
from .builds import Builds
from .functions import LAMBDA_FUNCTION, SERVERLESS_FUNCTION, Context, build_function
from .intrinsics import Resolver, function_of
from .reader import read_template
from .values import (
    NO_VALUE,
    describe,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
    is_scalar,
    text_of,
)

__all__ = ["Template", "load_template", "merge_globals", "parse_parameter_overrides"]

LAMBDA_ALIAS = "AWS::Lambda::Alias"
FUNCTION_TYPES = (SERVERLESS_FUNCTION, LAMBDA_FUNCTION)
GLOBAL_SECTIONS = ("Function", "Api", "HttpApi", "SimpleTable", "LayerVersion", "StateMachine")
# What `warmstart serve` reads of Globals.Api and Globals.HttpApi (API Gateway's CORS and auth).
GLOBAL_API_KEYS = {"Api": ("Auth", "Cors"), "HttpApi": ("Auth", "CorsConfiguration")}
# What SAM accepts in Globals.Function.
GLOBAL_FUNCTION_KEYS = frozenset(
    {
        "Handler",
        "Runtime",
        "CodeUri",
        "DeadLetterQueue",
        "Description",
        "MemorySize",
        "Timeout",
        "VpcConfig",
        "Environment",
        "Tags",
        "PropagateTags",
        "Tracing",
        "KmsKeyArn",
        "AutoPublishAlias",
        "AutoPublishAliasAllProperties",
        "Layers",
        "DeploymentPreference",
        "RolePath",
        "PermissionsBoundary",
        "ReservedConcurrentExecutions",
        "ProvisionedConcurrencyConfig",
        "AssumeRolePolicyDocument",
        "EventInvokeConfig",
        "FileSystemConfigs",
        "CodeSigningConfigArn",
        "Architectures",
        "SnapStart",
        "EphemeralStorage",
        "FunctionUrlConfig",
        "RuntimeManagementConfig",
        "LoggingConfig",
        "RecursiveLoop",
        "SourceKMSKeyArn",
    }
)
_PC = "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions"
_ACCOUNT = ", the account concurrency limit"


@dataclass
class Template:
    """A loaded template: its functions (by name) and what was said about it."""

    path: Path
    functions: dict[str, FunctionSpec]
    parameters: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)  # resolved, for front doors
    # Globals.Api and Globals.HttpApi (what of them is used: GLOBAL_API_KEYS), resolved.
    api_globals: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_parameter_overrides(text: str | list[str] | dict[str, str] | None) -> dict[str, str]:
    """`Key=Value Key2=Value2` or `ParameterKey=K,ParameterValue=V` (as sam does) into a dict.

    Example: parse_parameter_overrides("Stage=dev Memory=512") -> {"Stage": "dev", "Memory": "512"}
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return {str(k): text_of(v) for k, v in text.items()}
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
        raise TemplateError(
            f"parameter overrides must be text, a list of texts or a map (got {describe(text)})"
        )
    try:
        items = [x for t in text for x in shlex.split(t)]
    except ValueError as e:
        raise TemplateError(f"--parameter-overrides: {e}") from None
    out: dict[str, str] = {}
    for item in items:
        m = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", item)
        if m:
            out[m.group(1)] = m.group(2)
        elif "=" in item and not item.startswith("="):
            k, v = item.split("=", 1)
            out[k] = v
        else:
            raise TemplateError(f"parameter override {item!r} is not Key=Value")
    return out


def merge_globals(glob: Any, local: Any) -> Any:
    """SAM's rule: maps merge (local wins), lists concatenate global first, scalars: local wins.

    Example: merge_globals({"a": 1, "l": [1]}, {"l": [2]}) -> {"a": 1, "l": [1, 2]}
    """
    if (
        isinstance(glob, dict)
        and isinstance(local, dict)
        and function_of(glob) is None
        and function_of(local) is None
    ):
        out = dict(glob)
        for k, v in local.items():
            out[k] = merge_globals(glob[k], v) if k in glob else v
        return out
    if isinstance(glob, list) and isinstance(local, list):
        return glob + local
    return local


class _Parameters:
    """Declared parameters, their values (overrides, else Default) checked against their
    constraints as CloudFormation checks them."""

    def __init__(self, section: Any, overrides: dict[str, str]) -> None:
        declared = expect_map(section, "Parameters")
        self.declared = set(declared)
        self.values: dict[str, str] = {}
        self.lists: set[str] = set()
        self.warnings = [
            f"parameter override {k!r} is not a parameter of the template"
            for k in overrides
            if k not in declared
        ]
        for name, decl in declared.items():
            at = f"Parameters.{name}"
            decl = expect_map(decl, at, "a map (Type, Default, ...)")
            kind = expect_str(decl.get("Type", "String"), f"{at}.Type", "a parameter type")
            if kind.startswith("List<") or kind == "CommaDelimitedList":
                self.lists.add(name)
            if name in overrides:
                value, source = overrides[name], " (from --parameter-overrides)"
            elif decl.get("Default") is not None:
                value, source = self._default(decl["Default"], f"{at}.Default"), ""
            else:
                continue  # an error only if something refers to it
            self._check(name, decl, kind, value, source)
            self.values[name] = value

    @staticmethod
    def _default(value: Any, where: str) -> str:
        items = value if isinstance(value, list) else [value]
        if not all(is_scalar(v) for v in items):
            raise TemplateError(
                f"must be a text, a number or a list (got {describe(value)})", where
            )
        return ",".join(text_of(v) for v in items)

    def _check(self, name: str, decl: dict[str, Any], kind: str, value: str, source: str) -> None:
        at = f"Parameters.{name}"
        values = value.split(",") if name in self.lists else [value]
        shown = f"{describe(value)}{source}"
        if decl.get("AllowedValues") is not None:
            allowed = expect_list(decl["AllowedValues"], f"{at}.AllowedValues")
            texts = [self._default(a, f"{at}.AllowedValues") for a in allowed]
            if any(v not in texts for v in values):
                raise TemplateError(f"{shown} is not one of {', '.join(texts)}", at)
        if decl.get("AllowedPattern") is not None:
            pattern = expect_str(decl["AllowedPattern"], f"{at}.AllowedPattern", "a pattern")
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise TemplateError(
                    f"is not a regular expression: {e}", f"{at}.AllowedPattern"
                ) from None
            if any(not compiled.fullmatch(v) for v in values):
                raise TemplateError(f"{shown} does not match AllowedPattern {pattern!r}", at)
        for key in ("MinLength", "MaxLength"):
            if decl.get(key) is None:
                continue
            length = expect_int(decl[key], f"{at}.{key}", 0, 2**31)
            if len(value) < length if key == "MinLength" else len(value) > length:
                raise TemplateError(f"{shown} is not within {key} {length}", at)
        if kind not in ("Number", "List<Number>"):
            return
        for v in values:
            number = _number(v)
            if number is None:
                raise TemplateError(f"{shown} is not a number (Type: {kind})", at)
            for key in ("MinValue", "MaxValue"):
                if decl.get(key) is None:
                    continue
                bound = _number(decl[key])
                if bound is None:
                    raise TemplateError(
                        f"must be a number (got {describe(decl[key])})", f"{at}.{key}"
                    )
                if number < bound if key == "MinValue" else number > bound:
                    raise TemplateError(f"{shown} is not within {key} {decl[key]}", at)


def _number(value: Any) -> float | None:
    if not is_scalar(value):
        return None
    try:
        return float(text_of(value))
    except ValueError:
        return None


class _Loader:
    def __init__(
        self,
        path: Path,
        overrides: dict[str, str],
        region: str,
        account: str,
        builds: Builds,
        account_concurrency: int,
    ) -> None:
        self.path = path
        raw = read_template(path)
        if raw is None:
            raise TemplateError("is empty")
        raw = expect_map(raw, "", "a map of sections (Resources, Parameters, ...)")
        if "Resources" not in raw:
            raise TemplateError("has no Resources section")
        self.parameters = _Parameters(raw.get("Parameters"), overrides)
        self.warnings = list(self.parameters.warnings)
        mappings = expect_map(raw.get("Mappings"), "Mappings")
        for name, top in mappings.items():
            for key, second in expect_map(top, f"Mappings.{name}").items():
                expect_map(second, f"Mappings.{name}.{key}")
        raw_resources = expect_map(raw["Resources"], "Resources", "a map of resources")
        conditions = expect_map(raw.get("Conditions"), "Conditions")
        self.resolver = Resolver(
            parameters=self.parameters.values,
            list_parameters=self.parameters.lists,
            declared=self.parameters.declared,
            resources=raw_resources,
            mappings=mappings,
            conditions=conditions,
            region=region,
            account=account,
        )
        for name in conditions:  # CloudFormation checks every condition, used or not
            self.resolver.condition(name, f"Conditions.{name}")
        self.api_globals: dict[str, dict[str, Any]] = {}
        self.globals = self._globals(raw.get("Globals"))
        self.resources = {
            lid: res
            for lid, res in ((lid, self._resource(lid, res)) for lid, res in raw_resources.items())
            if res is not None
        }
        self.ctx = Context(
            path.parent, builds, self.resources, account_concurrency, warnings=self.warnings
        )
        self._aliases()

    def _globals(self, section: Any) -> dict[str, Any]:
        section = expect_map(section, "Globals")
        for key, value in section.items():
            if key not in GLOBAL_SECTIONS:
                raise TemplateError(
                    f"{key!r} is not a section of Globals ({', '.join(GLOBAL_SECTIONS)})",
                    f"Globals.{key}",
                )
            body = expect_map(value, f"Globals.{key}")
            if key in GLOBAL_API_KEYS:
                self._api_globals(key, body)
            elif body and key != "Function":
                self.warnings.append(f"Globals: ignored (not used locally): {key}")
        function = expect_map(section.get("Function"), "Globals.Function")
        for key in function:
            if key not in GLOBAL_FUNCTION_KEYS:
                raise TemplateError(
                    f"{key!r} is not a supported property of 'Function' in Globals",
                    f"Globals.Function.{key}",
                )
        return function

    def _api_globals(self, section: str, body: dict[str, Any]) -> None:
        """Keep what serve uses of Globals.Api or .HttpApi, resolved; say what it does not."""
        used = GLOBAL_API_KEYS[section]
        unused = [f"{section}.{k}" for k in body if k not in used]
        if unused:
            self.warnings.append(f"Globals: ignored (not used locally): {', '.join(unused)}")
        kept = {k: v for k, v in body.items() if k in used}
        resolved = self.resolver.resolve(kept, f"Globals.{section}")
        self.api_globals[section] = {} if resolved is NO_VALUE else resolved

    def _resource(self, lid: str, res: Any) -> dict[str, Any] | None:
        """The resource with its Properties resolved; None when its Condition is false."""
        at = f"Resources.{lid}"
        if lid.startswith("Fn::ForEach::"):
            raise TemplateError("Fn::ForEach (AWS::LanguageExtensions) is not supported", at)
        res = expect_map(res, at, "a resource (a map with Type and Properties)")
        if res.get("Type") is None:
            raise TemplateError("is required", f"{at}.Type")
        expect_str(res["Type"], f"{at}.Type", "a resource type")
        if res.get("Condition") is not None and not self.resolver.condition(
            res["Condition"], f"{at}.Condition"
        ):
            return None
        props = res.get("Properties")
        if res["Type"] == SERVERLESS_FUNCTION:
            props = merge_globals(self._globals_for(res, at), expect_map(props, f"{at}.Properties"))
        props = self.resolver.resolve(props, f"{at}.Properties")
        props = {} if props is NO_VALUE else expect_map(props, f"{at}.Properties")
        return {**res, "Properties": props}

    def _globals_for(self, res: dict[str, Any], at: str) -> dict[str, Any]:
        ignore = res.get("IgnoreGlobals")
        if ignore is None:
            return self.globals
        if ignore == "*":
            return {}
        names = expect_list(ignore, f"{at}.IgnoreGlobals", "'*' or a list of property names")
        return {k: v for k, v in self.globals.items() if k not in names}

    def _aliases(self) -> None:
        """AWS::Lambda::Alias resources give plain CloudFormation functions an alias (+ PC)."""
        for lid, res in self.resources.items():
            if res["Type"] != LAMBDA_ALIAS:
                continue
            at = f"Resources.{lid}.Properties"
            props = res["Properties"]
            fn = props.get("FunctionName")
            target = self.resources.get(fn) if isinstance(fn, str) else None
            if target is None or target["Type"] not in FUNCTION_TYPES:
                self.warnings.append(
                    f"{lid}: ignored (not used locally): an alias of {describe(fn)}, which is "
                    "not a function of this template"
                )
                continue
            name = expect_str(props.get("Name"), f"{at}.Name", "an alias name")
            if not ALIAS_RE.match(name):
                raise TemplateError(
                    f"{describe(name)} is not an alias name (1-128 letters, digits, - or _)",
                    f"{at}.Name",
                )
            count = 0
            if expect_map(
                props.get("ProvisionedConcurrencyConfig"), f"{at}.ProvisionedConcurrencyConfig"
            ):
                count = expect_int(
                    props["ProvisionedConcurrencyConfig"].get("ProvisionedConcurrentExecutions"),
                    f"{at}.{_PC}",
                    1,
                    self.ctx.account_concurrency,
                    _ACCOUNT,
                )
            self.ctx.aliases[fn] = (name, count, f"{at}.{_PC}")

    def functions(self) -> dict[str, FunctionSpec]:
        functions: dict[str, FunctionSpec] = {}
        held, limit = 0, self.ctx.account_concurrency
        for lid, res in self.resources.items():
            if res["Type"] not in FUNCTION_TYPES:
                continue
            spec = build_function(self.ctx, lid, res)
            if spec.name in functions:
                raise TemplateError(
                    f"another function ({functions[spec.name].logical_id}) is named {spec.name!r}",
                    f"Resources.{lid}",
                )
            functions[spec.name] = spec
            if spec.ignored:
                self.warnings.append(
                    f"{spec.name}: ignored (not used locally): {', '.join(spec.ignored)}"
                )
            # Reserved and provisioned concurrency come out of the account's: check it before
            # anything is started, rather than when environments run out of it.
            reserved = spec.reserved_concurrency
            amount = reserved if reserved is not None else spec.provisioned_concurrency
            held += amount
            if amount and held > limit:
                if reserved is not None:
                    where = f"Resources.{lid}.Properties.ReservedConcurrentExecutions"
                elif "ProvisionedConcurrencyConfig" in res["Properties"]:
                    where = f"Resources.{lid}.Properties.{_PC}"
                else:
                    where = self.ctx.aliases[lid][2]
                raise TemplateError(
                    f"{amount} with what the functions before it reserve or provision makes "
                    f"{held}, over the account concurrency limit ({limit})",
                    where,
                )
        if not functions:
            raise TemplateError(
                "defines no Lambda functions (AWS::Serverless::Function or AWS::Lambda::Function)"
            )
        return functions


def load_template(
    path: str | Path,
    parameter_overrides: str | dict[str, str] | None = None,
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    build_dir: str | Path | None = None,
    account_concurrency: int = 1000,
    state_dir: str | Path | None = None,
    use_builds: bool = True,
) -> Template:
    """Read a template and return its functions, validated; a TemplateError (one line naming
    the file, where in it and the rule) when something is wrong.

    Functions run their build where there is a fresh one (see builds.py: `build_dir`, else
    .aws-sam/build or <state_dir>/build); `use_builds=False`: their sources, always.

    Example:
        t = load_template("template.yaml", "Stage=dev"); t.functions["Hello"].memory_size
    """
    shown = str(path)
    overrides = parse_parameter_overrides(parameter_overrides)
    try:
        resolved = Path(path).resolve()
        bdir = Path(build_dir).resolve() if build_dir else None
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise TemplateError(f"cannot be resolved: {e}", file=shown) from None
    if bdir is not None and not folder_exists(bdir):
        raise TemplateError(f"--build-dir {build_dir} is not a folder")
    builds = Builds(
        resolved.parent, bdir, Path(state_dir).resolve() if state_dir else None, use_builds
    )
    try:
        loader = _Loader(resolved, overrides, region, account_id, builds, account_concurrency)
        functions = loader.functions()
    except TemplateError as e:
        raise e.in_file(shown) from None
    return Template(
        resolved, functions, loader.parameters.values, loader.warnings + builds.warnings,
        loader.ctx.notes + builds.notes, loader.resources, loader.api_globals,
    )  # fmt: skip
