"""The Python API: `Runtime` runs functions from a template or a handler, like Lambda does."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import Config
from .engine.events import Event, list_events, redrive
from .engine.result import InvokeResult
from .engine.service import Service
from .envvars import apply_env_vars
from .errors import ArgumentError, InvalidParameterValueError
from .sam import Template, load_template
from .spec import FunctionSpec

__all__ = ["Runtime"]

log = logging.getLogger("warmstart")

# What `configure` may change; the rest have calls of their own (or never change).
CONFIGURABLE = frozenset(f.name for f in dataclasses.fields(FunctionSpec)) - {
    "name",
    "events",
    "ignored",
    "logical_id",
    "reserved_concurrency",
    "auto_publish_alias",
    "provisioned_concurrency",
    "unsupported",
    "uninstalled",
}


def _expect(value: Any, kinds: type | tuple[type, ...], what: str, name: str) -> None:
    """An argument of the wrong type is an ArgumentError naming it, not a traceback later.
    (No argument here is a bool, which is an int to isinstance.)"""
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise ArgumentError(f"{name} must be {what} (got {value!r:.60})")


def _function(name: Any, argument: str = "function") -> None:
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"{argument} must be a function name or ARN (a str) (got {name!r:.60})")


def _options(
    qualifier: Any, client_context: Any = None, identity: Any = None, trace_id: Any = None
) -> None:
    if qualifier is None and client_context is None and identity is None and trace_id is None:
        return  # the common case, on every invocation: no more than this
    _expect(qualifier, (str, type(None)), "a version or alias (a str) or None", "qualifier")
    for value, name in ((client_context, "client_context"), (identity, "identity")):
        _expect(value, (bytes, str, type(None)), "JSON as bytes or str, or None", name)
    _expect(trace_id, (str, type(None)), "a str or None", "trace_id")


class Runtime:
    """Lambda's execution model on this machine.

    Example:
        from warmstart import Runtime
        with Runtime.from_template("template.yaml") as rt:
            res = rt.invoke("Hello", {"k": "v"})
            print(res.payload, res.report.duration_ms)
    """

    def __init__(
        self, functions: Iterable[FunctionSpec], config: Config | None = None, **settings: Any
    ) -> None:
        _expect(config, (Config, type(None)), "a Config or None", "config")
        if isinstance(functions, (str, bytes)) or not isinstance(functions, Iterable):
            raise ArgumentError(f"functions must be FunctionSpecs (got {functions!r:.60})")
        functions = list(functions)
        for spec in functions:
            _expect(spec, FunctionSpec, "a FunctionSpec", "each of functions")
        self.config = config or Config.resolve(**settings)
        self.template: Template | None = None
        self.service = Service(functions, self.config)
        self.warnings: list[str] = list(self.service.warnings)

    @classmethod
    def from_template(
        cls,
        path: str | Path,
        *,
        parameter_overrides: str | dict[str, str] | None = None,
        config: Config | None = None,
        **settings: Any,
    ) -> Runtime:
        """Load every function of a SAM/CloudFormation template.

        Example: Runtime.from_template("template.yaml", parameter_overrides="Stage=dev")
        """
        _expect(path, (str, os.PathLike), "a path", "path")
        _expect(config, (Config, type(None)), "a Config or None", "config")
        config = config or Config.resolve(**settings)
        template = load_template(
            path,
            parameter_overrides or config.parameter_overrides,
            region=config.region,
            account_id=config.account_id,
            build_dir=config.build_dir,
            account_concurrency=config.account_concurrency,
            state_dir=config.state_dir,
        )
        for line in template.warnings:
            log.warning(line)
        for line in template.notes:
            log.info(line)
        rt = cls(apply_env_vars(template.functions.values(), config.env_vars), config)
        rt.template = template
        rt.warnings = template.warnings + rt.warnings
        return rt

    @classmethod
    def from_handler(
        cls,
        handler: str,
        code_dir: str | Path,
        *,
        name: str = "Function",
        runtime: str | None = None,
        memory_size: int = 128,
        timeout: int = 3,
        environment: dict[str, str] | None = None,
        config: Config | None = None,
        **settings: Any,
    ) -> Runtime:
        """One function without a template.

        Example: Runtime.from_handler("app.handler", "src/", memory_size=256)
        """
        _expect(code_dir, (str, os.PathLike), "a path", "code_dir")
        _expect(environment, (dict, type(None)), "a dict or None", "environment")
        spec = FunctionSpec(
            name=name,
            handler=handler,
            code_dir=Path(code_dir).resolve(),
            runtime=runtime or f"python{sys.version_info[0]}.{sys.version_info[1]}",
            memory_size=memory_size,
            timeout=timeout,
            environment=dict(environment or {}),
        )
        config = config or Config.resolve(**settings)
        return cls(apply_env_vars([spec], config.env_vars), config)

    # -- invoking --------------------------------------------------------------------------

    def invoke(
        self,
        function: str,
        event: Any = None,
        qualifier: str | None = None,
        *,
        client_context: bytes | str | None = None,
        identity: bytes | str | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult:
        """Invoke synchronously. Raises TooManyRequestsError when throttled.

        `client_context` and `identity` are JSON (as X-Amz-Client-Context carries them, decoded);
        `trace_id` becomes _X_AMZN_TRACE_ID for this invocation.
        Example: rt.invoke("Hello", {"k": "v"}, qualifier="live").payload
        """
        _function(function)
        _options(qualifier, client_context, identity, trace_id)
        return self.service.invoke(
            function,
            event,
            qualifier,
            client_context=client_context,
            identity=identity,
            trace_id=trace_id,
        )

    async def ainvoke(
        self, function: str, event: Any = None, qualifier: str | None = None, **options: Any
    ) -> InvokeResult:
        """`invoke` for asyncio, to drive many invocations at once.

        Example: await asyncio.gather(*(rt.ainvoke("Hello") for _ in range(100)))
        """
        _function(function)
        unknown = set(options) - {"client_context", "identity", "trace_id"}
        if unknown:
            raise ArgumentError(f"ainvoke has no option {', '.join(sorted(unknown))}")
        _options(qualifier, **options)
        return await self.service.ainvoke(function, event, qualifier, **options)

    def invoke_async(
        self,
        function: str,
        event: Any = None,
        qualifier: str | None = None,
        *,
        client_context: bytes | str | None = None,
    ) -> str:
        """An asynchronous (Event) invocation: persisted, run in the background, retried on
        function errors; returns the request id. Failures are kept (see `events`).

        Example: rid = rt.invoke_async("Hello", {"k": "v"})
        """
        _function(function)
        _options(qualifier, client_context)
        return self.service.invoke_async(function, event, qualifier, client_context=client_context)

    def events(self, function: str | None = None, status: str | None = "failed") -> list[Event]:
        """Asynchronous events in the database: failed ones by default (status None: all)."""
        if function is not None:
            _function(function)
        _expect(status, (str, type(None)), "a status (a str) or None", "status")
        return list_events(self.config.state_dir, function, status)

    def redrive(self, ids: list[str] | None = None, function: str | None = None) -> int:
        """Queue failed asynchronous events again (all of them, or those ids)."""
        if function is not None:
            _function(function)
        if ids is not None and (
            not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)
        ):
            raise ArgumentError(f"ids must be a list of event ids (got {ids!r:.60})")
        count = redrive(self.config.state_dir, ids, function)
        self.service.event_queue()  # make sure something runs them
        return count

    # -- configuration ---------------------------------------------------------------------

    def recycle(self, function: str, qualifier: str | None = None) -> int:
        """Discard the function's environments: the next invocation is a cold start."""
        _function(function)
        _options(qualifier)
        return self.service.recycle(function, qualifier)

    def configure(self, function: str, **changes: Any) -> FunctionSpec:
        """Change $LATEST (memory_size, timeout, environment, ...); environments are replaced.

        Example: rt.configure("Hello", memory_size=1024, timeout=10)
        """
        _function(function)
        unknown = set(changes) - CONFIGURABLE
        if unknown:
            raise ArgumentError(
                f"configure cannot change {', '.join(sorted(unknown))} (it can change "
                f"{', '.join(sorted(CONFIGURABLE))})"
            )
        _expect(changes.get("environment"), (dict, type(None)), "a dict or None", "environment")
        return self.service.configure(function, **changes)

    def publish_version(self, function: str) -> str:
        _function(function)
        return self.service.publish_version(function)

    def create_alias(self, function: str, alias: str, version: str) -> None:
        _function(function)
        _expect(alias, str, "an alias name (a str)", "alias")
        _expect(version, str, "a version (a str, e.g. '1')", "version")
        self.service.create_alias(function, alias, version)

    def put_reserved_concurrency(self, function: str, reserved: int | None) -> None:
        _function(function)
        _expect(reserved, (int, type(None)), "a whole number or None", "reserved")
        if reserved is not None and reserved < 0:
            raise InvalidParameterValueError(f"reserved concurrency must be >= 0 (got {reserved})")
        self.service.put_reserved_concurrency(function, reserved)

    def put_provisioned_concurrency(self, function: str, qualifier: str, count: int) -> None:
        _function(function)
        _expect(qualifier, str, "a version or alias (a str)", "qualifier")
        self.service.put_provisioned_concurrency(function, qualifier, count)

    def function(self, name: str) -> FunctionSpec:
        """The current ($LATEST) definition of a function."""
        _function(name, "name")
        return self.service.function(name).latest.spec

    @property
    def functions(self) -> list[str]:
        return list(self.service.functions)

    def environments(self, function: str | None = None) -> list[dict[str, Any]]:
        """Live environments: function, version, id, pid, init_type, state, invocations."""
        if function is not None:
            _function(function)
        return self.service.environments(function)

    @property
    def isolation(self) -> str:
        """One line saying how CPU and memory limits are enforced on this machine."""
        return self.service.isolation.describe()

    def flush(self) -> None:
        """Write pending records and logs now (they are batched in the background)."""
        self.service.writer.flush()

    def close(self) -> None:
        """Stop every environment; nothing is left running."""
        self.service.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
