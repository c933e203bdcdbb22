"""The Python API: `Runtime` runs functions from a template or a handler, like Lambda does."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import Config
from .engine.events import Event, list_events, redrive
from .engine.result import InvokeResult
from .engine.service import Service
from .sam import Template, load_template
from .spec import FunctionSpec

__all__ = ["Runtime"]

log = logging.getLogger("warmstart")


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
        config = config or Config.resolve(**settings)
        template = load_template(
            path,
            parameter_overrides or config.parameter_overrides,
            region=config.region,
            account_id=config.account_id,
            build_dir=config.build_dir,
        )
        for line in template.warnings:
            log.warning(line)
        for line in template.notes:
            log.info(line)
        rt = cls(template.functions.values(), config)
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
        spec = FunctionSpec(
            name=name,
            handler=handler,
            code_dir=Path(code_dir).resolve(),
            runtime=runtime or f"python{sys.version_info[0]}.{sys.version_info[1]}",
            memory_size=memory_size,
            timeout=timeout,
            environment=dict(environment or {}),
        )
        return cls([spec], config, **settings)

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
        return self.service.invoke_async(function, event, qualifier, client_context=client_context)

    def events(self, function: str | None = None, status: str | None = "failed") -> list[Event]:
        """Asynchronous events in the database: failed ones by default (status None: all)."""
        return list_events(self.config.state_dir, function, status)

    def redrive(self, ids: list[str] | None = None, function: str | None = None) -> int:
        """Queue failed asynchronous events again (all of them, or those ids)."""
        count = redrive(self.config.state_dir, ids, function)
        self.service.event_queue()  # make sure something runs them
        return count

    # -- configuration ---------------------------------------------------------------------

    def recycle(self, function: str, qualifier: str | None = None) -> int:
        """Discard the function's environments: the next invocation is a cold start."""
        return self.service.recycle(function, qualifier)

    def configure(self, function: str, **changes: Any) -> FunctionSpec:
        """Change $LATEST (memory_size, timeout, environment, ...); environments are replaced.

        Example: rt.configure("Hello", memory_size=1024, timeout=10)
        """
        return self.service.configure(function, **changes)

    def publish_version(self, function: str) -> str:
        return self.service.publish_version(function)

    def create_alias(self, function: str, alias: str, version: str) -> None:
        self.service.create_alias(function, alias, version)

    def put_reserved_concurrency(self, function: str, reserved: int | None) -> None:
        self.service.put_reserved_concurrency(function, reserved)

    def put_provisioned_concurrency(self, function: str, qualifier: str, count: int) -> None:
        self.service.put_provisioned_concurrency(function, qualifier, count)

    def function(self, name: str) -> FunctionSpec:
        """The current ($LATEST) definition of a function."""
        return self.service.function(name).latest.spec

    @property
    def functions(self) -> list[str]:
        return list(self.service.functions)

    def environments(self, function: str | None = None) -> list[dict[str, Any]]:
        """Live environments: function, version, id, pid, init_type, state, invocations."""
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
