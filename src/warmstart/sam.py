"""Load functions from a SAM or CloudFormation template (YAML or JSON).

Resolves what can be resolved on one machine: Parameters (defaults and overrides), pseudo
parameters, Conditions, Mappings and the intrinsic functions over them; merges Globals.Function
the way the SAM transform does; and turns each function into a validated FunctionSpec.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, TemplateError
from .spec import FunctionSpec, validate

__all__ = ["Template", "load_template", "parse_parameter_overrides"]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
LAMBDA_ALIAS = "AWS::Lambda::Alias"

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
# Properties a function definition may carry that warmstart uses (the rest are listed as ignored).
USED = frozenset(
    {
        "Handler",
        "Runtime",
        "CodeUri",
        "InlineCode",
        "Code",
        "MemorySize",
        "Timeout",
        "Environment",
        "Architectures",
        "Layers",
        "ReservedConcurrentExecutions",
        "AutoPublishAlias",
        "ProvisionedConcurrencyConfig",
        "SnapStart",
        "EphemeralStorage",
        "LoggingConfig",
        "FunctionName",
        "Events",
        "PackageType",
        "EventInvokeConfig",
    }
)
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "warmstart",
    "AWS::StackId": "arn:aws:cloudformation:{region}:{account}:stack/warmstart/"
    "00000000-0000-0000-0000-000000000000",
    "AWS::NotificationARNs": [],
}


class Unresolved:
    """A value only CloudFormation can compute (Fn::GetAtt, Fn::ImportValue, ...)."""

    def __init__(self, what: str, placeholder: str) -> None:
        self.what = what
        self.placeholder = placeholder

    def __repr__(self) -> str:
        return f"<unresolved {self.what}>"


_NO_VALUE = object()  # AWS::NoValue: the property disappears


# -- YAML with CloudFormation's short tags ------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X`, `!GetAtt A.B`, `!Sub ...` into their long forms."""


def _short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _short_tag)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise TemplateError(f"cannot read template {path}: {e.strerror}") from e
    try:
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=CfnLoader)
    except (yaml.YAMLError, ValueError) as e:
        raise TemplateError(f"{path} is not a valid template: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources section")
    return data


# -- intrinsic functions --------------------------------------------------------------------------


class Resolver:
    def __init__(
        self, template: dict[str, Any], params: dict[str, str], region: str, account: str
    ) -> None:
        self.declared = set(template.get("Parameters") or {})
        self.resources = template.get("Resources") or {}
        self.mappings = template.get("Mappings") or {}
        self.conditions = template.get("Conditions") or {}
        self.params = params
        self.region = region
        self.account = account
        self._cond_cache: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if name == "AWS::Region":
            return self.region
        if name == "AWS::AccountId":
            return self.account
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO:
            v = PSEUDO[name]
            return v.format(region=self.region, account=self.account) if isinstance(v, str) else v
        if name in self.resources:
            return name  # a resource's Ref is its physical id; locally, the logical id
        if name in self.declared:
            raise TemplateError(
                f"parameter {name} has no Default: pass it with --parameter-overrides {name}=VALUE"
            )
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def condition(self, name: str) -> bool:
        if name not in self._cond_cache:
            if name not in self.conditions:
                raise TemplateError(f"condition {name!r} is not defined")
            self._cond_cache[name] = bool(self.truth(self.conditions[name]))
        return self._cond_cache[name]

    def truth(self, value: Any) -> bool:
        v = self.resolve(value)
        if isinstance(v, Unresolved):
            raise TemplateError(
                f"a condition depends on {v.what}, which cannot be resolved locally"
            )
        return v is True or (isinstance(v, str) and v.lower() == "true")

    def sub(self, arg: Any) -> Any:
        if isinstance(arg, list):
            text, extra = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, extra = arg, {}
        unresolved: list[Unresolved] = []

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                v = extra[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                v = Unresolved(f"${{{name}}}", name)
            else:
                v = self.ref(name)
            if isinstance(v, Unresolved):
                unresolved.append(v)
                return v.placeholder
            return str(v)

        out = re.sub(r"\$\{([^}]+)\}", one, str(text))
        if unresolved:
            return Unresolved(f"Fn::Sub {text!r}", out)
        return out

    def call(self, name: str, arg: Any) -> Any:
        if name == "Ref":
            return self.ref(self.resolve(arg))
        if name == "Condition":
            return self.condition(arg)
        if name == "Fn::Sub":
            return self.sub(arg)
        if name == "Fn::If":
            cond, yes, no = arg
            return self.resolve(yes if self.condition(cond) else no)
        if name == "Fn::GetAtt":
            target = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return Unresolved(
                f"Fn::GetAtt {'.'.join(map(str, target))}", ".".join(map(str, target))
            )
        a = self.resolve(arg)
        if isinstance(a, Unresolved) or (
            isinstance(a, list) and any(isinstance(x, Unresolved) for x in a)
        ):
            bad = (
                a if isinstance(a, Unresolved) else next(x for x in a if isinstance(x, Unresolved))
            )
            return Unresolved(bad.what, bad.placeholder)
        functions: dict[str, Callable[[Any], Any]] = {
            "Fn::Join": lambda a: str(a[0]).join(str(x) for x in _flat(a[1])),
            "Fn::Select": lambda a: _flat(a[1])[int(a[0])],
            "Fn::Split": lambda a: str(a[1]).split(str(a[0])),
            "Fn::FindInMap": lambda a: self.mappings[a[0]][a[1]][a[2]],
            "Fn::Base64": lambda a: base64.b64encode(str(a).encode()).decode(),
            "Fn::GetAZs": lambda a: [f"{self.region}{z}" for z in "abc"],
            "Fn::Equals": lambda a: str(a[0]) == str(a[1]),
            "Fn::Not": lambda a: not self.truth(a[0]),
            "Fn::And": lambda a: all(self.truth(x) for x in a),
            "Fn::Or": lambda a: any(self.truth(x) for x in a),
            "Fn::ToJsonString": lambda a: json.dumps(a, separators=(",", ":")),
            "Fn::Length": lambda a: len(a),
        }
        if name not in functions:
            return Unresolved(name, f"<{name}>")
        try:
            return functions[name](a)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise TemplateError(f"{name} {arg!r}: {e!r}") from e

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                    return self.call(key, arg)
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not _NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        return value


def _flat(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- Globals --------------------------------------------------------------------------------------


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) in ("Ref", "Condition") or next(iter(value)).startswith("Fn::"))
    )


def merge_globals(glob: Any, local: Any) -> Any:
    """SAM's rule: maps merge (local wins), lists concatenate global first, scalars: local wins."""
    if (
        isinstance(glob, dict)
        and isinstance(local, dict)
        and not (_is_intrinsic(glob) or _is_intrinsic(local))
    ):
        out = dict(glob)
        for k, v in local.items():
            out[k] = merge_globals(glob[k], v) if k in glob else v
        return out
    if isinstance(glob, list) and isinstance(local, list):
        return glob + local
    return local


# -- the template ---------------------------------------------------------------------------------


@dataclass
class Template:
    """A loaded template: its functions (by name) and what was said about it."""

    path: Path
    functions: dict[str, FunctionSpec]
    parameters: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)  # resolved, for front doors


def parse_parameter_overrides(text: str | list[str] | dict[str, str] | None) -> dict[str, str]:
    """`Key=Value Key2=Value2` or `ParameterKey=K,ParameterValue=V` (as sam does) into a dict.

    Example: parse_parameter_overrides("Stage=dev Memory=512") -> {"Stage": "dev", "Memory": "512"}
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    items = (
        shlex.split(text) if isinstance(text, str) else [x for t in text for x in shlex.split(t)]
    )
    out: dict[str, str] = {}
    for item in items:
        m = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", item)
        if m:
            out[m.group(1)] = m.group(2)
        elif "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
        else:
            raise TemplateError(f"parameter override {item!r} is not Key=Value")
    return out


def _parameters(
    template: dict[str, Any], overrides: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    declared = template.get("Parameters") or {}
    warnings = [
        f"parameter override {k!r} is not a parameter of the template"
        for k in overrides
        if k not in declared
    ]
    values: dict[str, str] = {}
    for name, decl in declared.items():
        decl = decl or {}
        if name in overrides:
            value: Any = overrides[name]
        elif "Default" in decl:
            value = decl["Default"]
        else:
            continue  # an error only if something refers to it
        if isinstance(value, list):
            value = ",".join(map(str, value))
        value = str(value)
        allowed = decl.get("AllowedValues")
        if allowed and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        values[name] = value
    return values, warnings


def _inline_code(name: str, code: str) -> Path:
    """Lambda stores inline Python as index.py; keep it in a folder named by its content."""
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "warmstart-inline" / f"{name}-{digest}"
    if not (folder / "index.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.py").write_text(code)
    return folder


class _FunctionBuilder:
    def __init__(self, loader: _Loader, logical_id: str, resource: dict[str, Any]) -> None:
        self.loader = loader
        self.id = logical_id
        self.type = resource.get("Type")
        self.props: dict[str, Any] = resource.get("Properties") or {}
        self.name = logical_id
        self.notes: list[str] = []

    def fail(self, prop: str, problem: str) -> SpecError:
        return SpecError(self.name, prop, problem)

    def value(self, prop: str, raw: Any, kind: type | None = None) -> Any:
        if isinstance(raw, Unresolved):
            raise self.fail(prop, f"{raw.what} cannot be resolved locally")
        if kind is int and isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            return int(raw)
        if kind is int and (isinstance(raw, bool) or not isinstance(raw, int)):
            raise self.fail(prop, f"{raw!r} is not a whole number")
        if kind is str and not isinstance(raw, str):
            raise self.fail(prop, f"{raw!r} is not a string")
        return raw

    def code_dir(self) -> Path:
        p = self.props
        base = self.loader.path.parent
        if self.type == LAMBDA_FUNCTION:
            code = p.get("Code")
            if isinstance(code, dict) and "ZipFile" in code:
                return _inline_code(self.name, self.value("Code.ZipFile", code["ZipFile"], str))
            if isinstance(code, str):
                return self._local_dir("Code", code)
            raise self.fail("Code", "must be a local folder or ZipFile (S3 code cannot be fetched)")
        if "InlineCode" in p:
            return _inline_code(self.name, self.value("InlineCode", p["InlineCode"], str))
        uri = p.get("CodeUri", ".")
        if isinstance(uri, dict):
            raise self.fail("CodeUri", "points to S3; warmstart needs a local folder")
        if self.loader.build_dir is not None:
            built = self.loader.build_dir / self.id
            if built.is_dir():
                return built.resolve()
        elif (base / ".aws-sam" / "build" / self.id).is_dir():
            self.notes.append(
                f"{self.name}: a build folder exists (.aws-sam/build/{self.id}); "
                "pass --build-dir .aws-sam/build to run the built code"
            )
        return self._local_dir("CodeUri", uri)

    def _local_dir(self, prop: str, uri: Any) -> Path:
        uri = self.value(prop, uri, str)
        if uri.startswith("s3://"):
            raise self.fail(prop, "points to S3; warmstart needs a local folder")
        path: Path = (self.loader.path.parent / str(uri)).resolve()
        if path.suffix in (".zip", ".jar"):
            raise self.fail(prop, f"{uri!r} is an archive; point it at the unpacked folder")
        if not path.is_dir():
            raise self.fail(prop, f"code folder {uri!r} does not exist")
        return path

    def layers(self, ignored: list[str]) -> tuple[Path, ...]:
        out = []
        for ref in self.props.get("Layers") or []:
            if isinstance(ref, Unresolved) or (isinstance(ref, str) and ref.startswith("arn:")):
                what = ref.what if isinstance(ref, Unresolved) else ref
                ignored.append(f"Layers ({what}: only local layers can be used)")
                continue
            res = self.loader.resources.get(ref) if isinstance(ref, str) else None
            if not res:
                raise self.fail("Layers", f"{ref!r} is not a layer in this template")
            props = res.get("Properties") or {}
            uri = (
                props.get("ContentUri")
                if res.get("Type") == "AWS::Serverless::LayerVersion"
                else props.get("Content")
            )
            if self.loader.build_dir is not None and (self.loader.build_dir / ref).is_dir():
                out.append((self.loader.build_dir / ref).resolve())
                continue
            if not isinstance(uri, str):
                raise self.fail("Layers", f"layer {ref} has no local ContentUri folder")
            path = (self.loader.path.parent / uri).resolve()
            if not path.is_dir():
                raise self.fail("Layers", f"layer {ref}: folder {uri!r} does not exist")
            out.append(path)
        return tuple(out)

    def build(self) -> FunctionSpec:
        p = self.props
        ignored: list[str] = []
        if "FunctionName" in p:
            self.name = self.value("FunctionName", p["FunctionName"], str)
        if p.get("PackageType", "Zip") != "Zip":
            raise self.fail("PackageType", "container images are not supported; use Zip")
        for key in p:
            if key not in USED:
                ignored.append(key)
        env = (p.get("Environment") or {}).get("Variables") or {}
        if not isinstance(env, dict):
            raise self.fail("Environment.Variables", "must be a map")
        variables = {}
        for k, v in env.items():
            if isinstance(v, Unresolved):
                self.loader.warnings.append(
                    f"{self.name}: Environment.Variables.{k} is {v.what}, which cannot be resolved "
                    f"locally; set to {v.placeholder!r}"
                )
                v = v.placeholder
            variables[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
        arch = p.get("Architectures") or ["x86_64"]
        if not isinstance(arch, list) or len(arch) != 1:
            raise self.fail("Architectures", "must list exactly one architecture")
        logging_cfg = p.get("LoggingConfig") or {}
        ignored += [
            f"LoggingConfig.{k}"
            for k in logging_cfg
            if k not in ("LogFormat", "ApplicationLogLevel")
        ]
        pc_cfg = p.get("ProvisionedConcurrencyConfig") or {}
        invoke_cfg = p.get("EventInvokeConfig") or {}
        ignored += [
            f"EventInvokeConfig.{k}"
            for k in invoke_cfg
            if k not in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
        ]
        snap = (p.get("SnapStart") or {}).get("ApplyOn", "None")
        spec = FunctionSpec(
            name=self.name,
            handler=self.value("Handler", p.get("Handler"), str)
            if "Handler" in p
            else self._missing("Handler"),
            runtime=self.value("Runtime", p.get("Runtime"), str)
            if "Runtime" in p
            else self._missing("Runtime"),
            code_dir=self.code_dir(),
            memory_size=self.value("MemorySize", p.get("MemorySize", 128), int),
            timeout=self.value("Timeout", p.get("Timeout", 3), int),
            environment=variables,
            architecture=self.value("Architectures", arch[0], str),
            layers=self.layers(ignored),
            reserved_concurrency=self.value(
                "ReservedConcurrentExecutions", p["ReservedConcurrentExecutions"], int
            )
            if "ReservedConcurrentExecutions" in p
            else None,
            auto_publish_alias=self.value("AutoPublishAlias", p["AutoPublishAlias"], str)
            if "AutoPublishAlias" in p
            else self.loader.aliases.get(self.id, (None, 0))[0],
            provisioned_concurrency=self.value(
                "ProvisionedConcurrencyConfig",
                pc_cfg.get("ProvisionedConcurrentExecutions", 0),
                int,
            )
            if pc_cfg
            else self.loader.aliases.get(self.id, (None, 0))[1],
            snap_start=self.value("SnapStart.ApplyOn", snap, str) == "PublishedVersions",
            ephemeral_storage_mb=self.value(
                "EphemeralStorage.Size", (p.get("EphemeralStorage") or {}).get("Size", 512), int
            ),
            log_format=self.value(
                "LoggingConfig.LogFormat", logging_cfg.get("LogFormat", "Text"), str
            ),
            application_log_level=logging_cfg.get("ApplicationLogLevel"),
            events=p.get("Events") or {},
            max_retry_attempts=self.value(
                "EventInvokeConfig.MaximumRetryAttempts",
                invoke_cfg.get("MaximumRetryAttempts", 2),
                int,
            ),
            max_event_age_s=self.value(
                "EventInvokeConfig.MaximumEventAgeInSeconds",
                invoke_cfg.get("MaximumEventAgeInSeconds", 21600),
                int,
            ),
            ignored=tuple(ignored),
            logical_id=self.id,
        )
        return validate(spec)

    def _missing(self, prop: str) -> Any:
        raise self.fail(prop, "is required")


class _Loader:
    def __init__(
        self,
        path: Path,
        overrides: dict[str, str],
        region: str,
        account: str,
        build_dir: Path | None,
    ) -> None:
        self.path = path
        self.build_dir = build_dir
        self.warnings: list[str] = []
        raw = _read(path)
        self.params, warnings = _parameters(raw, overrides)
        self.warnings += warnings
        resolver = Resolver(raw, self.params, region, account)
        resources = {}
        for lid, res in raw["Resources"].items():
            if not isinstance(lid, str):
                raise TemplateError(
                    f"resource name {lid!r} is not a string: quote it (YAML reads "
                    "words like Off, Yes and No as booleans)"
                )
            if not isinstance(res, dict):
                raise TemplateError(f"resource {lid} is not a map")
            cond = res.get("Condition")
            try:
                if cond and not resolver.condition(cond):
                    continue
                resources[lid] = (
                    self._merged(raw, res) if res.get("Type") == SERVERLESS_FUNCTION else res
                )
                resources[lid] = resolver.resolve(resources[lid])
            except TemplateError as e:
                raise TemplateError(f"resource {lid}: {e}") from None
        self.resources = resources
        # AWS::Lambda::Alias resources give plain CloudFormation functions an alias (+ PC).
        self.aliases: dict[str, tuple[str, int]] = {}
        for res in resources.values():
            if res.get("Type") == LAMBDA_ALIAS:
                props = res.get("Properties") or {}
                fn = props.get("FunctionName")
                if isinstance(fn, str) and isinstance(props.get("Name"), str):
                    pc = (props.get("ProvisionedConcurrencyConfig") or {}).get(
                        "ProvisionedConcurrentExecutions", 0
                    )
                    self.aliases[fn] = (props["Name"], int(pc))

    @staticmethod
    def _merged(raw: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
        glob = ((raw.get("Globals") or {}).get("Function")) or {}
        unknown = [k for k in glob if k not in GLOBAL_FUNCTION_KEYS]
        if unknown:
            raise TemplateError(
                f"'Globals' section is invalid: '{unknown[0]}' is not a supported "
                "property of 'Function'"
            )
        ignore = res.get("IgnoreGlobals")
        if ignore == "*":
            glob = {}
        elif isinstance(ignore, list):
            glob = {k: v for k, v in glob.items() if k not in ignore}
        out = dict(res)
        out["Properties"] = merge_globals(glob, res.get("Properties") or {})
        return out


def load_template(
    path: str | Path,
    parameter_overrides: str | dict[str, str] | None = None,
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    build_dir: str | Path | None = None,
) -> Template:
    """Read a template and return its functions, validated.

    Example:
        t = load_template("template.yaml", "Stage=dev"); t.functions["Hello"].memory_size
    """
    path = Path(path).resolve()
    overrides = parse_parameter_overrides(parameter_overrides)
    bdir = Path(build_dir).resolve() if build_dir else None
    loader = _Loader(path, overrides, region, account_id, bdir)
    functions: dict[str, FunctionSpec] = {}
    notes: list[str] = []
    for lid, res in loader.resources.items():
        if res.get("Type") not in (SERVERLESS_FUNCTION, LAMBDA_FUNCTION):
            continue
        builder = _FunctionBuilder(loader, lid, res)
        spec = builder.build()
        notes += builder.notes
        if spec.name in functions:
            raise TemplateError(f"two functions are named {spec.name!r}")
        functions[spec.name] = spec
        if spec.ignored:
            loader.warnings.append(
                f"{spec.name}: ignored (not used locally): {', '.join(spec.ignored)}"
            )
    if not functions:
        raise TemplateError(f"{path} defines no Lambda functions")
    return Template(path, functions, loader.params, loader.warnings, notes, loader.resources)
