"""One function resource of a template (AWS::Serverless::Function or AWS::Lambda::Function) as a
validated FunctionSpec: each property read with the type it must have, named where it is wrong.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError, TemplateError
from ..spec import (
    EPHEMERAL_RANGE,
    MEMORY_RANGE,
    TIMEOUT_RANGE,
    FunctionSpec,
    folder_exists,
    validate,
)
from .builds import Builds, requirement_names
from .values import (
    Unresolved,
    describe,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
    is_scalar,
    text_of,
)

__all__ = ["LAMBDA_FUNCTION", "SERVERLESS_FUNCTION", "Context", "build_function"]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
API_TYPES = {"Api": "AWS::Serverless::Api", "HttpApi": "AWS::Serverless::HttpApi"}
# Properties of a function that warmstart uses (the rest are listed as ignored).
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
        "Tracing",
        "TracingConfig",
    }
)
_MISSING: Any = object()
_ACCOUNT = ", the account concurrency limit"


@dataclass
class Context:
    """What building a function needs from the rest of the template."""

    folder: Path  # the template's folder: relative paths start there
    builds: Builds  # where built code may be (sam build, warmstart build, --build-dir)
    resources: dict[str, Any]  # resolved, by logical id
    account_concurrency: int
    # AWS::Lambda::Alias resources, by the function they name: (alias, provisioned, where)
    aliases: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Properties:
    """A resource's resolved Properties, read with the type each one must have."""

    def __init__(self, values: dict[str, Any], where: str) -> None:
        self.values = values
        self.at = where

    def where(self, path: str) -> str:
        return f"{self.at}.{path}"

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.values
        parts = path.split(".")
        for i, part in enumerate(parts):
            node = expect_map(node, self.where(".".join(parts[:i])) if i else self.at)
            if node.get(part) is None:
                return default
            node = node[part]
        return node

    def text(self, path: str, default: Any = _MISSING, choices: tuple[str, ...] = ()) -> Any:
        value = self.get(path, default)
        if value is _MISSING:
            raise TemplateError("is required", self.where(path))
        if value is default:
            return value
        what = f"one of {', '.join(choices)}" if choices else "a text"
        value = expect_str(value, self.where(path), what)
        if choices and value not in choices:
            raise TemplateError(f"must be {what} (got {describe(value)})", self.where(path))
        return value

    def integer(self, path: str, lo: int, hi: int, default: Any, why: str = "") -> Any:
        value = self.get(path, default)
        if value is _MISSING:
            raise TemplateError("is required", self.where(path))
        if value is default:
            return value
        return expect_int(value, self.where(path), lo, hi, why)

    def mapping(self, path: str) -> dict[str, Any]:
        return expect_map(self.get(path), self.where(path))


def layer_source(folder: Path, ref: str, res: dict[str, Any]) -> Path:
    """A layer's local folder (its ContentUri, or Content), which must exist."""
    content = "ContentUri" if res["Type"] == LAYER_TYPES[0] else "Content"
    layer_at = f"Resources.{ref}.Properties.{content}"
    uri = expect_map(res.get("Properties"), f"Resources.{ref}.Properties").get(content)
    uri = expect_str(uri, layer_at, "a local folder")
    path = folder / uri
    if not folder_exists(path):
        raise TemplateError(f"layer folder {describe(uri)} does not exist", layer_at)
    return path


def _inline_code(name: str, code: str, where: str) -> Path:
    """Lambda stores inline Python as index.py; keep it in a folder named by its content, in
    this user's cache folder: in the shared temporary folder another user could put code (or a
    link) there first."""
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]  # never a path: the name is the user's
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(cache) / "warmstart" / "inline" / f"{safe}-{digest}"
    try:
        if not (folder / "index.py").exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".index.py.{os.getpid()}"
            partial.write_text(code)
            partial.chmod(0o644)  # read by environments that run as users of their own
            partial.replace(folder / "index.py")  # whole or not at all, for a run beside this
    except OSError as e:
        raise TemplateError(f"cannot write the inline code to {folder}: {e.strerror}", where) from e
    return folder


class _Builder:
    def __init__(self, ctx: Context, logical_id: str, resource: dict[str, Any]) -> None:
        self.ctx = ctx
        self.id = logical_id
        self.type = resource["Type"]
        self.p = _Properties(resource.get("Properties") or {}, f"Resources.{logical_id}.Properties")
        self.name = logical_id
        self.ignored: list[str] = []
        self.uninstalled: tuple[str, ...] = ()  # requirements.txt of sources run unbuilt

    def code_dir(self) -> Path:
        p = self.p
        if self.type == LAMBDA_FUNCTION:
            code = p.get("Code", _MISSING)
            if isinstance(code, str):
                return self._local_dir("Code", code)
            if code is _MISSING:
                raise TemplateError("is required", p.where("Code"))
            code = expect_map(code, p.where("Code"), "a map (ZipFile, S3Bucket) or a local folder")
            if "ZipFile" in code:
                return _inline_code(self.name, p.text("Code.ZipFile"), p.where("Code.ZipFile"))
            raise TemplateError(
                "must be a local folder or ZipFile (code in S3 or an image cannot be fetched)",
                p.where("Code"),
            )
        if p.get("InlineCode") is not None:
            return _inline_code(self.name, p.text("InlineCode"), p.where("InlineCode"))
        uri = p.get("CodeUri", ".")
        if isinstance(uri, dict):
            raise TemplateError("points to S3; warmstart needs a local folder", p.where("CodeUri"))
        builds = self.ctx.builds
        if builds.explicit is not None:  # as given, even without the sources beside it
            built = builds.pick(self.id, self.ctx.folder)
            if built is not None:
                return built
        source = self._local_dir("CodeUri", uri)
        built = builds.pick(self.id, source) if builds.explicit is None else None
        if built is None:
            self.uninstalled = tuple(sorted(requirement_names(source)))
        return built or source

    def _local_dir(self, prop: str, uri: Any) -> Path:
        where = self.p.where(prop)
        folder = expect_str(uri, where, "a local folder")
        if folder.startswith("s3://"):
            raise TemplateError("points to S3; warmstart needs a local folder", where)
        path = self.ctx.folder / folder
        if path.suffix in (".zip", ".jar"):
            raise TemplateError(
                f"{describe(folder)} is an archive; point it at the unpacked folder", where
            )
        if not folder_exists(path):
            raise TemplateError(f"code folder {describe(folder)} does not exist", where)
        return path.resolve()

    def environment(self) -> dict[str, str]:
        p = self.p
        for key in p.mapping("Environment"):
            if key != "Variables":
                self.ignored.append(f"Environment.{key}")
        variables = {}
        for key, value in p.mapping("Environment.Variables").items():
            where = p.where(f"Environment.Variables.{key}")
            if isinstance(value, Unresolved):
                self.ctx.warnings.append(
                    f"{self.name}: Environment.Variables.{key} is {value.what}, which cannot be "
                    f"resolved locally; set to {value.placeholder!r}"
                )
                value = value.placeholder
            elif not is_scalar(value):
                raise TemplateError(f"must be a text (got {describe(value)})", where)
            variables[key] = text_of(value)
        return variables

    def architecture(self) -> str:
        where = self.p.where("Architectures")
        arch = expect_list(self.p.get("Architectures", ["x86_64"]), where, "[x86_64] or [arm64]")
        if len(arch) != 1:
            raise TemplateError(f"must list exactly one architecture (got {len(arch)})", where)
        return expect_str(arch[0], f"{where}[0]", "x86_64 or arm64")

    def layers(self) -> tuple[Path, ...]:
        where = self.p.where("Layers")
        out = []
        for i, ref in enumerate(expect_list(self.p.get("Layers", []), where)):
            if isinstance(ref, Unresolved) or (isinstance(ref, str) and ref.startswith("arn:")):
                what = ref.what if isinstance(ref, Unresolved) else ref
                self.ignored.append(f"Layers ({what}: only local layers can be used)")
                continue
            ref = expect_str(ref, f"{where}[{i}]", "a layer (!Ref a LayerVersion, or an ARN)")
            res = self.ctx.resources.get(ref)
            if not res or res.get("Type") not in LAYER_TYPES:
                raise TemplateError(
                    f"{describe(ref)} is not a layer in this template", f"{where}[{i}]"
                )
            builds = self.ctx.builds
            built = builds.pick(ref, self.ctx.folder) if builds.explicit is not None else None
            if built is not None:
                out.append(built)
                continue
            path = layer_source(self.ctx.folder, ref, res)
            built = builds.pick(ref, path) if builds.explicit is None else None
            out.append(built or path.resolve())
        return tuple(out)

    def events(self) -> dict[str, Any]:
        """The Events, shaped as the front doors read them (API routes)."""
        events = self.p.mapping("Events")
        for name, event in events.items():
            at = self.p.where(f"Events.{name}")
            event = expect_map(event, at)
            kind = expect_str(event.get("Type"), f"{at}.Type", "an event type (Api, SQS, ...)")
            props = expect_map(event.get("Properties"), f"{at}.Properties")
            if kind not in API_TYPES:  # said, never silently dropped
                self.ignored.append(f"Events.{name} (a {kind} event source is not run locally)")
                continue
            for key in ("Path", "Method"):
                if props.get(key) is not None:
                    expect_str(props[key], f"{at}.Properties.{key}")
                elif kind == "Api":
                    raise TemplateError("is required", f"{at}.Properties.{key}")
            version = props.get("PayloadFormatVersion")
            if version is not None and text_of(version) not in ("1.0", "2.0"):
                raise TemplateError(
                    f"must be '1.0' or '2.0' (got {describe(version)})",
                    f"{at}.Properties.PayloadFormatVersion",
                )
            key = "RestApiId" if kind == "Api" else "ApiId"
            self._api(kind, props.get(key), f"{at}.Properties.{key}")
        return events

    def _api(self, kind: str, ref: Any, where: str) -> None:
        """The API an event names must be one of the template's, with a usable stage."""
        if ref is None or isinstance(ref, Unresolved):
            return
        ref = expect_str(ref, where, f"!Ref to an {API_TYPES[kind]}")
        api = self.ctx.resources.get(ref)
        if not api or api.get("Type") != API_TYPES[kind]:
            raise TemplateError(f"{ref!r} is not an {API_TYPES[kind]} in this template", where)
        props = expect_map(api.get("Properties"), f"Resources.{ref}.Properties")
        for name in ("StageName", "PayloadFormatVersion"):
            if props.get(name) is not None and not is_scalar(props[name]):
                raise TemplateError(
                    f"must be a text (got {describe(props[name])})",
                    f"Resources.{ref}.Properties.{name}",
                )

    def build(self) -> FunctionSpec:
        p = self.p
        limit = self.ctx.account_concurrency
        self.name = p.text("FunctionName", self.id)
        if p.text("PackageType", "Zip", ("Zip", "Image")) != "Zip":
            # Listed, and answering why, while the template's other functions run.
            return FunctionSpec(
                name=self.name,
                handler="",
                code_dir=self.ctx.folder,
                runtime="",
                memory_size=p.integer("MemorySize", *MEMORY_RANGE, 128),
                timeout=p.integer("Timeout", *TIMEOUT_RANGE, 3),
                logical_id=self.id,
                unsupported=f"{self.name}: PackageType Image (a container image) does not run "
                "here yet; the template's Zip functions do",
            )
        self.ignored += [key for key in p.values if key not in USED]
        self.ignored += [
            f"LoggingConfig.{k}"
            for k in p.mapping("LoggingConfig")
            if k not in ("LogFormat", "ApplicationLogLevel")
        ]
        self.ignored += [
            f"EventInvokeConfig.{k}"
            for k in p.mapping("EventInvokeConfig")
            if k not in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
        ]
        alias, provisioned = p.text("AutoPublishAlias", None), 0
        if p.get("ProvisionedConcurrencyConfig") is not None:
            provisioned = p.integer(
                "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
                1,
                limit,
                _MISSING,
                _ACCOUNT,
            )
        elif alias is None and self.id in self.ctx.aliases:
            alias, provisioned, _ = self.ctx.aliases[self.id]
        handler, runtime, code_dir = p.text("Handler"), p.text("Runtime"), self.code_dir()
        environment, layers, events = self.environment(), self.layers(), self.events()
        spec = FunctionSpec(  # the properties that add to self.ignored are read by now
            name=self.name,
            handler=handler,
            runtime=runtime,
            code_dir=code_dir,
            memory_size=p.integer("MemorySize", *MEMORY_RANGE, 128),
            timeout=p.integer("Timeout", *TIMEOUT_RANGE, 3),
            environment=environment,
            architecture=self.architecture(),
            layers=layers,
            reserved_concurrency=p.integer(
                "ReservedConcurrentExecutions", 0, limit, None, _ACCOUNT
            ),
            auto_publish_alias=alias,
            provisioned_concurrency=provisioned,
            snap_start=p.text("SnapStart.ApplyOn", "None", ("None", "PublishedVersions"))
            == "PublishedVersions",
            ephemeral_storage_mb=p.integer("EphemeralStorage.Size", *EPHEMERAL_RANGE, 512),
            log_format=p.text("LoggingConfig.LogFormat", "Text", ("Text", "JSON")),
            application_log_level=p.text("LoggingConfig.ApplicationLogLevel", None),
            events=events,
            max_retry_attempts=p.integer("EventInvokeConfig.MaximumRetryAttempts", 0, 2, 2),
            max_event_age_s=p.integer(
                "EventInvokeConfig.MaximumEventAgeInSeconds", 60, 21600, 21600
            ),
            ignored=tuple(self.ignored),
            logical_id=self.id,
            uninstalled=self.uninstalled,
            tracing=p.text(
                "Tracing" if self.type != LAMBDA_FUNCTION else "TracingConfig.Mode",
                "PassThrough",
                ("Active", "PassThrough"),
            ),
        )
        try:
            return validate(spec)
        except SpecError as e:
            if e.property == "FunctionName" and p.get("FunctionName") is None:
                raise TemplateError(
                    f"the logical id is the function's name, and it {e.problem}",
                    f"Resources.{self.id}",
                ) from None
            raise TemplateError(e.problem, p.where(e.property)) from None


def build_function(ctx: Context, logical_id: str, resource: dict[str, Any]) -> FunctionSpec:
    """A function resource (resolved) as a validated FunctionSpec, or a TemplateError naming
    the property. Example: build_function(ctx, "Hello", resources["Hello"]).memory_size
    """
    return _Builder(ctx, logical_id, resource).build()
