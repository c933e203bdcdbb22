"""The engine: functions, versions and aliases, concurrency, and every invocation's life.

An invocation: resolve the version, take a concurrency slot (or throttle), take the most recently
used idle environment (or start one: a cold start), send the event, get the result, give the
environment back frozen, and hand the record to the batching writer. Only the slot bookkeeping
happens under the lock; INIT and INVOKE run outside it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import (
    EngineError,
    InvalidParameterValueError,
    InvalidRequestContentError,
    RequestTooLargeError,
    ResourceConflictError,
    ResourceNotFoundError,
    TooManyRequestsError,
    UnsupportedRuntimeError,
)
from ..observe.logs import init_report, init_start, iso_ms, restore_report, restore_start
from ..observe.report import billed_ms
from ..observe.writer import RecordWriter
from ..spec import MODULES, FunctionSpec, normalized, validate
from . import payload
from .codewatch import fingerprint
from .environment import (
    EXITED,
    GONE,
    OK,
    TIMED_OUT,
    Environment,
    InitOutcome,
    Request,
    Response,
)
from .events import ASYNC_PAYLOAD_LIMIT, EventQueue, pending_events
from .forkserver import ExitStatus
from .limits import Isolation, detect
from .pool import Pool
from .python import SNAP_START, PythonAdapter, unreadable
from .result import InvokeResult
from .runtime.protocol import POLL_NEXT
from .snapshot import Snapshot, SnapshotServer, Taken

__all__ = ["COLD", "PROVISIONED", "RESTORE", "SYNC_PAYLOAD_LIMIT", "WARM", "Service"]

log = logging.getLogger("warmstart")

COLD, WARM, PROVISIONED, RESTORE = "cold", "warm", "provisioned", "restore"
ON_DEMAND, PROVISIONED_INIT = "on-demand", "provisioned-concurrency"
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
LATEST = "$LATEST"
RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_REASON = "ConcurrentInvocationLimitExceeded"
WATCHDOG_INTERVAL_S = 0.01
CODE_CHECK_S = 1.0  # how soon an edit to a function's code replaces its environments
INIT_WARNING = 0.8  # an INIT that takes this much of its limit is said on the console
_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
}


class Version:
    """A published version of a function, or $LATEST: one configuration, one pool.

    Keeps what every invocation needs from the spec, so the invoke path reads attributes.
    """

    __slots__ = (
        "architecture",
        "arn",
        "cpu_throttled",
        "function",
        "json_logs",
        "memory",
        "modified",
        "name",
        "pool",
        "python",
        "revision",
        "snapshot",
        "spec",
        "timeout",
    )

    def __init__(
        self, function: Function, name: str, spec: FunctionSpec, arn: str, cpu_throttled: bool
    ) -> None:
        self.modified = time.time()  # when this configuration was made (LastModified)
        self.revision = new_request_id()  # RevisionId: changes with every configuration
        self.function = function
        self.name = name
        self.spec = spec
        self.pool = Pool(self)
        self.arn = arn  # unqualified
        self.cpu_throttled = cpu_throttled
        self.json_logs = spec.log_format == "JSON"
        self.architecture = spec.architecture
        self.memory = spec.memory_size
        self.python = spec.is_python
        self.timeout = spec.timeout
        self.snapshot: Snapshot | None = None  # SnapStart, on published versions


class Function:
    __slots__ = (
        "aliases",
        "in_flight",
        "latest",
        "name",
        "next_version",
        "on_demand",
        "provisioned",
        "reserved",
        "versions",
    )

    def __init__(self, spec: FunctionSpec, latest: Callable[[Function], Version]) -> None:
        self.name = spec.name
        self.latest = latest(self)
        self.versions: dict[str, Version] = {}
        self.aliases: dict[str, str] = {}
        self.next_version = 1
        self.reserved = spec.reserved_concurrency
        self.on_demand = 0  # invocations in flight on on-demand environments
        self.in_flight = 0  # all of its invocations in flight (its concurrency)
        self.provisioned = 0  # provisioned environments allocated (they hold concurrency)


class _Call(Request):
    """One invocation on its way through the engine: the request and its bookkeeping."""

    __slots__ = ("concurrency", "counted", "kind", "qualifier", "started", "t0", "version")

    def __init__(
        self,
        version: Version,
        qualifier: str | None,
        arn: str,
        event: bytes,
        client_context: bytes | str | None = None,
        identity: bytes | str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.version = version
        self.qualifier = qualifier
        self.arn = arn
        self.event = event
        self.started = started = time.time()
        self.t0 = time.perf_counter_ns()
        self.request_id = request_id or new_request_id()
        self.deadline_ms = int(started * 1000) + version.timeout * 1000
        if client_context is None and identity is None and trace_id is None:
            self.client_context = self.identity = self.trace_id = b""
        else:
            self.client_context = (
                client_context.encode()
                if isinstance(client_context, str)
                else client_context or b""
            )
            self.identity = identity.encode() if isinstance(identity, str) else identity or b""
            self.trace_id = trace_id.encode() if trace_id else b""
        self.kind = COLD
        self.counted = False  # holds a slot of the account's unreserved concurrency
        self.flags = 0  # set by Service._admit
        self.concurrency = 0  # the function's invocations in flight with this one


def request_ids() -> Callable[[], str]:
    """A generator of random UUID-v4 request ids, about a microsecond each.

    A private Mersenne Twister seeded from the OS: request ids need to be unique and look like
    Lambda's, not to be secret, and os.urandom per id costs twice as much.
    """
    bits = random.Random(os.urandom(32)).getrandbits

    def new() -> str:
        h = f"{bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[bits(2)]}{h[17:20]}-{h[20:]}"

    return new


new_request_id = request_ids()


def trace_headers() -> Callable[[], str]:
    """A generator of X-Ray trace headers, sampled, as Lambda sets _X_AMZN_TRACE_ID for a
    function with active tracing: `Root=1-<epoch hex>-<96 random bits>;Parent=<64>;Sampled=1`."""
    bits = random.Random(os.urandom(32)).getrandbits

    def new() -> str:
        return f"Root=1-{int(time.time()):08x}-{bits(96):024x};Parent={bits(64):016x};Sampled=1"

    return new


new_trace_header = trace_headers()


def encode_event(event: Any, limit: int = SYNC_PAYLOAD_LIMIT) -> bytes:
    """The request payload, checked as Lambda's front end checks an Invoke body.

    bytes and str must be one JSON document (empty is `{}`), anything else is encoded as JSON,
    None is `{}`. Raises InvalidRequestContentError with Lambda's message (not JSON, invalid
    UTF-8, NaN or Infinity, nested deeper than 1,000 levels) or RequestTooLargeError.
    Example: encode_event({"id": 1}) == b'{"id": 1}'
    """
    if event is None:
        return b"{}"
    if isinstance(event, str):
        try:
            event = event.encode()
        except UnicodeEncodeError as e:
            raise InvalidRequestContentError(
                f"{payload.PREFIX}the event is not valid Unicode: {e.reason} at {e.start}"
            ) from None
    text = isinstance(event, bytes)
    data = (event or b"{}") if text else payload.dumps(event)
    if len(data) > limit:
        raise RequestTooLargeError(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        )
    if text:
        payload.parse(data)
    return data


def exit_message(status: ExitStatus | None) -> str:
    if status is None:
        return "Runtime exited with error: signal: killed"
    if status.code == 0:
        return "Runtime exited without providing a reason"
    if status.code > 0:
        return f"Runtime exited with error: exit status {status.code}"
    return (
        f"Runtime exited with error: signal: {_SIGNAL_NAMES.get(-status.code, str(-status.code))}"
    )


class Service:
    """Runs functions. Thread-safe; `invoke` from many threads, or `ainvoke` from an event loop.

    Example:
        with Service([spec], Config.resolve()) as svc:
            svc.invoke("Hello", {"k": "v"}).payload
    """

    def __init__(
        self,
        specs: Iterable[FunctionSpec],
        config: Config | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.config = config or Config.resolve()
        self.functions: dict[str, Function] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._busy: set[Environment] = set()
        # Environments in INIT for an invocation: function, since when, whether that was told.
        self._initializing: dict[Environment, tuple[str, float, bool]] = {}
        self._hinted: set[tuple[str, str]] = set()  # (function, module) told to build
        self._unreserved_used = 0
        # Code folders and their fingerprint, by function.
        self._code: dict[str, tuple[tuple[Path, ...], tuple[int, int, int]]] = {}
        self._events: EventQueue | None = None
        self._in_flight = 0  # invocations past _acquire (guarded by the lock)
        self.warnings: list[str] = []
        self.isolation = isolation or detect(self.config.isolation, self.config.cgroup_v2_root)
        # Environments polling for their next event need a core each, and the engine needs one.
        self._polling_slots = max(1, self.isolation.cores - 1)
        # Callers that may invoke at once, beyond those in flight: `serve` counts its open
        # connections, whose requests may wait in sockets while the engine sees one in flight.
        self.callers: Callable[[], int] = lambda: 0
        log.info(self.isolation.describe())
        try:
            for spec in specs:
                self._add(validate(spec))
            self._capacity = self._unreserved_capacity()
        except BaseException:
            self.isolation.close()
            raise
        self.work_dir = tempfile.mkdtemp(prefix="warmstart-")
        self.writer = RecordWriter(self.config.state_dir, records=self.config.records)
        try:
            self.adapter = PythonAdapter(self.config, self.isolation, Path(self.work_dir))
            self._check_runtimes()
            self.adapter.prestart(
                {f.latest.spec.runtime for f in self.functions.values() if f.latest.spec.is_python}
            )
        except BaseException:
            if hasattr(self, "adapter"):
                self.adapter.close()
            self.writer.close()
            self.isolation.close()
            self._cleanup_dirs()
            raise
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._reaper, name="warmstart-reaper", daemon=True)
        ]
        if not self.isolation.cgroups:
            self._threads.append(
                threading.Thread(target=self._watchdog, name="warmstart-rss", daemon=True)
            )
        for t in self._threads:
            t.start()
        try:
            for fn in list(self.functions.values()):
                self._publish_alias(fn)
            if pending_events(self.config.state_dir):
                self.event_queue()  # accepted before a crash or a restart: they run now
        except BaseException:
            self.close()
            raise

    def _publish_alias(self, fn: Function) -> None:
        """AutoPublishAlias: version 1 and the alias, with its provisioned environments."""
        spec = fn.latest.spec
        if spec.auto_publish_alias:
            version = self.publish_version(fn.name)
            self.create_alias(fn.name, spec.auto_publish_alias, version)
            if spec.provisioned_concurrency:
                self.put_provisioned_concurrency(
                    fn.name, spec.auto_publish_alias, spec.provisioned_concurrency
                )

    # -- definitions -----------------------------------------------------------------------

    def _add(self, spec: FunctionSpec) -> None:
        if spec.name in self.functions:
            raise EngineError(f"two functions are named {spec.name!r}")
        self.functions[spec.name] = Function(spec, lambda fn: self._version(fn, LATEST, spec))

    def _version(self, fn: Function, name: str, spec: FunctionSpec) -> Version:
        return Version(
            fn, name, spec, self._arn(fn.name), self.isolation.cpu_throttled(spec.memory_size)
        )

    def _unreserved_capacity(self) -> int:
        reserved = sum(f.reserved or 0 for f in self.functions.values())
        if reserved > self.config.account_concurrency:
            raise InvalidParameterValueError(
                f"reserved concurrency ({reserved}) exceeds the account limit "
                f"({self.config.account_concurrency})"
            )
        return self.config.account_concurrency - reserved

    def _check_runtimes(self) -> None:
        seen = set()
        for fn in self.functions.values():
            spec = fn.latest.spec
            if not spec.is_python:
                self.warnings.append(_why_not(spec) + "; it cannot be invoked")
                continue
            closed = self._closed_code(spec)
            if closed:
                self.warnings.append(closed)
            minor = spec.runtime.removeprefix("python3.")
            if spec.snap_start and minor.isdigit() and int(minor) < 12:
                self.warnings.append(
                    f"{spec.name}: SnapStart runs here on {spec.runtime}; "
                    "on AWS it needs python3.12 or later"
                )
            if spec.runtime in seen:
                continue
            seen.add(spec.runtime)
            warning = self.adapter.interpreter(spec.runtime).warning
            if warning:
                self.warnings.append(warning)
        for w in self.warnings:
            log.warning(w)

    def _closed_code(self, spec: FunctionSpec) -> str:
        """A warning for code that environments, as users of their own, cannot read ('')."""
        closed = unreadable(spec) if self.isolation.users else ""
        if not closed:
            return ""
        return (
            f"{spec.name}: its code is not readable by other users: {closed}; environments "
            "run as users of their own, as on Lambda, where the import fails the same way: "
            "give its files read permission for all (chmod -R o+rX, or mode 644 in a zip)"
        )

    def function(self, name: str) -> Function:
        fn = self.functions.get(name)
        if fn is None:
            for f in self.functions.values():
                if f.latest.spec.logical_id == name:
                    return f
            raise ResourceNotFoundError(f"Function not found: {self._arn(name)}")
        return fn

    def _arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def resolve(self, name: str, qualifier: str | None = None) -> tuple[Version, str | None]:
        """The version an invocation runs: name, `name:qualifier`, partial or full ARN.

        Example: resolve("Hello", "live") -> (<version 1>, "live")
        """
        if name.startswith("arn:"):
            parts = name.split(":")
            if len(parts) < 7 or parts[5] != "function":
                raise ResourceNotFoundError(f"Function not found: {name}")
            name = parts[6]
            qualifier = parts[7] if len(parts) > 7 and not qualifier else qualifier
        elif name.count(":") >= 2:  # 123456789012:function:Name[:qualifier]
            parts = name.split(":")
            name = parts[2]
            qualifier = parts[3] if len(parts) > 3 and not qualifier else qualifier
        elif ":" in name:
            name, q = name.split(":", 1)
            qualifier = qualifier or q
        fn = self.function(name)
        if qualifier is None or qualifier == LATEST:
            return fn.latest, qualifier
        version = fn.versions.get(fn.aliases.get(qualifier, qualifier))
        if version is None:
            raise ResourceNotFoundError(f"Function not found: {self._arn(fn.name, qualifier)}")
        return version, qualifier

    # -- versions, aliases, concurrency ----------------------------------------------------

    def publish_version(self, name: str) -> str:
        """Publish $LATEST's configuration as a new numbered version; returns its number."""
        fn = self.function(name)
        with self._lock:
            number = str(fn.next_version)
            fn.next_version += 1
            fn.versions[number] = version = self._version(fn, number, fn.latest.spec)
        if version.spec.snap_start and version.python:
            version.snapshot = Snapshot(
                lambda: self._take_snapshot(version),
                lambda server: self._spare(version, server),
                lambda env: self._dispose([env]),
            )
            version.snapshot.prepare()  # in the background, as Lambda does after PublishVersion
        return number

    def _spare(self, version: Version, server: SnapshotServer) -> Environment | None:
        """A restore of the version spawned ahead of need (see Snapshot)."""
        env = self.adapter.environment(version, SNAP_START, server)
        try:
            if env.spawn_ahead(self.config.init_timeout_s):
                return env
        except EngineError:  # the snapshot, or the whole runtime, is closing
            pass
        env.kill()
        env.wait(5.0)
        env.close()
        return None

    def _take_snapshot(self, version: Version) -> Taken:
        """INIT of a SnapStart version in a new snapshot process, reported in its own stream."""
        started = time.time()
        taken, stream = self.adapter.take_snapshot(version, self.config.init_timeout_s)
        init = taken.init
        self.writer.log(
            version.function.name,
            stream,
            self._init_text(version, SNAP_START, stream, init, started, report=True),
        )
        where = f"{version.function.name}:{version.name}"
        if not init.ok:
            error_type, message = self._init_error(init)
            log.warning("%s: the SnapStart snapshot failed: %s %s", where, error_type, message)
        elif taken.unsafe:
            log.warning(
                "%s: SnapStart is off: %s, and a fork would not have them; environments "
                "start normally (stop them before INIT ends, or in a before-snapshot hook)",
                where,
                taken.unsafe,
            )
        return taken

    def create_alias(self, name: str, alias: str, version: str, *, update: bool = False) -> None:
        """Point an alias at a version; `update` requires it to exist, else it must not."""
        fn = self.function(name)
        if version != LATEST and version not in fn.versions:
            raise ResourceNotFoundError(f"Function not found: {self._arn(fn.name, version)}")
        with self._lock:
            if update and alias not in fn.aliases:
                raise ResourceNotFoundError(f"Alias not found: {self._arn(fn.name, alias)}")
            if not update and alias in fn.aliases:
                raise ResourceConflictError(f"Alias already exists: {self._arn(fn.name, alias)}")
            fn.aliases[alias] = version

    def add_function(self, spec: FunctionSpec) -> None:
        """A new function while running (CreateFunction). Raises ResourceConflictError if taken."""
        spec = validate(spec)
        with self._lock:
            if spec.name in self.functions:
                raise ResourceConflictError(f"Function already exist: {spec.name}")
            self._add(spec)
            try:
                self._capacity = self._unreserved_capacity()
            except InvalidParameterValueError:
                del self.functions[spec.name]
                raise
        fn = self.functions[spec.name]
        if spec.is_python:
            closed = self._closed_code(spec)
            if closed:
                log.warning("%s", closed)
            self.adapter.prestart({spec.runtime})
        self._publish_alias(fn)

    def delete_function(self, name: str) -> None:
        """Remove a function and shut its environments down (DeleteFunction)."""
        fn = self.function(name)
        discarded = []
        with self._lock:
            self.functions.pop(fn.name, None)
            for v in [fn.latest, *fn.versions.values()]:
                v.pool.retired = True
                v.pool.provisioned_target = 0
                discarded += v.pool.take_idle()
                for env in v.pool.envs:
                    env.retired = True
            self._set_provisioned(fn, -fn.provisioned)
            self._capacity = self._unreserved_capacity()
        self._dispose(discarded)
        for v in fn.versions.values():
            if v.snapshot is not None:
                v.snapshot.discard(closing=True)

    def put_reserved_concurrency(self, name: str, reserved: int | None) -> None:
        """Set (or with None remove) a function's reserved concurrency."""
        fn = self.function(name)
        with self._lock:
            before = fn.reserved
            fn.reserved = reserved
            try:
                self._capacity = self._unreserved_capacity()
            except InvalidParameterValueError:
                fn.reserved = before
                raise

    def put_provisioned_concurrency(self, name: str, qualifier: str, count: int) -> None:
        """Keep `count` environments initialized for a version or alias (blocks until ready).

        The count is checked against the function's reserved concurrency, else against what
        the account has unreserved, before a single environment is started.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidParameterValueError(
                f"provisioned concurrency must be a whole number >= 0 (got {count!r:.60})"
            )
        version, _ = self.resolve(name, qualifier)
        if version.name == LATEST:
            raise InvalidParameterValueError(
                "provisioned concurrency needs a version or an alias, not $LATEST"
            )
        fn = version.function
        with self._lock:
            others = fn.provisioned - version.pool.provisioned_target
            if fn.reserved is not None and others + count > fn.reserved:
                raise InvalidParameterValueError(
                    f"{fn.name}: provisioned concurrency {count} exceeds its reserved "
                    f"concurrency ({fn.reserved})"
                )
            if fn.reserved is None:
                held = sum(
                    v.pool.provisioned_target
                    for f in self.functions.values()
                    if f.reserved is None
                    for v in f.versions.values()
                    if v is not version
                )
                if held + count > self._capacity:
                    raise InvalidParameterValueError(
                        f"{fn.name}: provisioned concurrency {count} exceeds the account's "
                        f"unreserved concurrency ({max(0, self._capacity - held)} of "
                        f"{self.config.account_concurrency} left)"
                    )
            version.pool.provisioned_target = count
            version.pool.provisioned = {"Status": "IN_PROGRESS", "LastModified": time.time()}
        self._provision(version)

    def provisioned_concurrency(self, name: str, qualifier: str) -> dict[str, Any] | None:
        """Requested, allocated and available environments, and the status; None if not set."""
        version, _ = self.resolve(name, qualifier)
        pool = version.pool
        with self._lock:
            if not pool.provisioned:
                return None
            return {
                "RequestedProvisionedConcurrentExecutions": pool.provisioned_target,
                "AllocatedProvisionedConcurrentExecutions": pool.provisioned_count(),
                "AvailableProvisionedConcurrentExecutions": len(pool.idle_provisioned),
                **pool.provisioned,
            }

    def _provision(self, version: Version) -> None:
        """Start or stop provisioned environments until the pool has its target."""
        pool = version.pool
        with self._lock:
            # Environments on their way count: two of these may run at once (a death and the
            # reaper each ask for a replacement) and must not both start the missing ones.
            have = pool.provisioned_count() + pool.provisioning
            extra = []
            while have > pool.provisioned_target and pool.idle_provisioned:
                env = pool.idle_provisioned.pop()
                pool.envs.discard(env)
                extra.append(env)
                have -= 1
            self._set_provisioned(version.function, -len(extra))
            missing = max(0, pool.provisioned_target - have)
            self._set_provisioned(version.function, missing)
            pool.provisioning += missing
        self._dispose(extra)
        if not missing:
            if not pool.provisioning:
                pool.provisioned["Status"] = "READY"
            return
        pool.provisioned["Status"] = "IN_PROGRESS"
        errors: list[str] = []

        def one() -> None:
            try:
                self._start_provisioned(version)
            except Exception as e:  # reported below; the others still start
                errors.append(str(e))

        threads = [threading.Thread(target=one) for _ in range(missing)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for e in errors:
            log.warning(
                "%s: a provisioned environment failed to initialize: %s", version.function.name, e
            )
        pool.provisioned["Status"] = "FAILED" if errors else "READY"
        if errors:
            pool.provisioned["StatusReason"] = errors[0]

    def _set_provisioned(self, fn: Function, delta: int) -> None:
        fn.provisioned += delta
        if fn.reserved is None:
            self._unreserved_used += delta

    def _start_provisioned(self, version: Version) -> None:
        """One provisioned environment that `_provision` counted (in `provisioning` and the
        function's allocation): it joins the pool, or is taken off both counts."""
        pool = version.pool
        env = None
        try:
            env = self.adapter.environment(version, PROVISIONED_INIT)
            with self._lock:  # in one step: never counted twice, nor not at all
                pool.provisioning -= 1
                pool.envs.add(env)
            started = time.time()
            init = env.start(max(130.0, float(version.spec.timeout)))
        except BaseException:
            with self._lock:
                if env is None:
                    pool.provisioning -= 1
                else:
                    pool.envs.discard(env)
                self._set_provisioned(version.function, -1)
            if env is not None:
                env.kill()
                env.wait(5.0)
                env.close()
            raise
        text = self._init_text(version, env.init_type, env.stream, init, started, report=True)
        self.writer.log(version.function.name, env.stream, text)
        with self._lock:
            if init.ok and not pool.retired and not self._closed:
                pool.idle_provisioned.append(env)
                return
            pool.envs.discard(env)
            self._set_provisioned(version.function, -1)
        if init.ok:
            self._dispose([env])
        else:
            raise EngineError(self._init_error(init)[1])

    # -- changes ---------------------------------------------------------------------------

    def configure(
        self,
        name: str,
        *,
        memory_size: int | None = None,
        timeout: int | None = None,
        environment: dict[str, str] | None = None,
        **changes: Any,
    ) -> FunctionSpec:
        """Change $LATEST's configuration; its environments are replaced (next invoke is cold).

        Example: svc.configure("Hello", memory_size=1024, timeout=10)
        """
        fn = self.function(name)
        if memory_size is not None:
            changes["memory_size"] = memory_size
        if timeout is not None:
            changes["timeout"] = timeout
        if environment is not None:
            changes["environment"] = dict(environment)
        spec = validate(fn.latest.spec.replace(**changes))
        with self._lock:
            old = fn.latest
            fn.latest = self._version(fn, LATEST, spec)
            old.pool.retired = True
            idle = old.pool.take_idle()
        self.adapter.forget(old)
        self._dispose(idle)
        return spec

    def recycle(self, name: str, qualifier: str | None = None) -> int:
        """Discard a function's environments (all versions, or one): the next invoke is cold.

        Provisioned environments are replaced by fresh ones. Returns how many were discarded.
        """
        fn = self.function(name)
        versions = (
            [self.resolve(name, qualifier)[0]] if qualifier else [fn.latest, *fn.versions.values()]
        )
        discarded = []
        with self._lock:
            for v in versions:
                gone = v.pool.take_idle()
                self._set_provisioned(fn, -sum(1 for e in gone if e.init_type == PROVISIONED_INIT))
                discarded += gone
                for env in v.pool.envs:  # busy ones go when they are released
                    env.retired = True
        self._dispose(discarded)
        for v in versions:
            if v.pool.provisioned_target:
                self._provision(v)
        return len(discarded)

    # -- invoking --------------------------------------------------------------------------

    def _prepare(
        self,
        name: str,
        event: Any,
        qualifier: str | None,
        client_context: bytes | str | None,
        identity: bytes | str | None,
        trace_id: str | None,
        request_id: str | None = None,
    ) -> _Call:
        fn = self.functions.get(name)
        if fn is not None and qualifier is None:
            version = fn.latest
            arn = version.arn
        else:
            version, qualifier = self.resolve(name, qualifier)
            arn = self._arn(version.function.name, qualifier)
        if not version.python:
            raise UnsupportedRuntimeError(_why_not(version.spec))
        if self._closed:
            raise EngineError("the runtime is closed")
        if trace_id is None and version.spec.tracing == "Active":
            trace_id = new_trace_header()  # what Lambda gives an actively traced function
        return _Call(
            version,
            qualifier,
            arn,
            encode_event(event),
            client_context,
            identity,
            trace_id,
            request_id,
        )

    def _admit(self, call: _Call) -> None:
        """Count a call in flight (the lock is held) and say whether its environment may poll.

        An environment that polls for its next event instead of sleeping saves the wake-up
        (~50 us on a VM), but only while it has a core to itself: with more invocations in
        flight than spare cores, polling environments take the CPU the others need (measured:
        16 concurrent callers on 2 cores went from 12,000 to 5,500 invocations/s).
        """
        self._in_flight += 1
        fn = call.version.function
        fn.in_flight += 1
        call.concurrency = fn.in_flight
        busy = max(self._in_flight, self.callers())
        call.flags = POLL_NEXT if busy <= self._polling_slots else 0

    def _acquire(self, call: _Call) -> Environment | None:
        """Take a concurrency slot and an environment (None: start one); raise when throttled.

        An idle environment whose process has exited (killed, or with its zygote) is never
        handed out: it is dropped here and the next one taken, or a new one started.
        """
        version = call.version
        fn = version.function
        pool = version.pool
        dead: list[Environment] = []
        try:
            with self._lock:
                while pool.idle_provisioned:
                    env = pool.idle_provisioned.pop()
                    if not env.alive():
                        self._drop_dead(pool, env, dead)
                        continue
                    call.kind = PROVISIONED
                    self._busy.add(env)
                    self._admit(call)
                    return env
                if fn.reserved is not None:
                    used = fn.on_demand + fn.provisioned
                    reason = RESERVED_REASON if used >= fn.reserved else None
                else:
                    reason = ACCOUNT_REASON if self._unreserved_used >= self._capacity else None
                if reason is None:
                    self._admit(call)
                    fn.on_demand += 1
                    call.counted = fn.reserved is None
                    if call.counted:
                        self._unreserved_used += 1
                    while pool.idle:
                        env = pool.idle.pop()
                        if not env.alive():
                            self._drop_dead(pool, env, dead)
                            continue
                        call.kind = WARM
                        self._busy.add(env)
                        return env
                    call.kind = COLD
                    return None
        finally:
            if dead:
                self._bury(version, dead)
        self.writer.submit(_throttle_record(call, reason))
        raise TooManyRequestsError(reason, "Rate Exceeded.")

    def _inited(self, env: Environment) -> None:
        with self._lock:
            self._initializing.pop(env, None)

    def _warn_long_inits(self) -> None:
        """Say when an INIT has taken most of its limit: a cold start that is about to fail
        should not be a surprise (the reaper looks every second or so)."""
        limit = self.config.init_timeout_s
        now = time.monotonic()
        late = []
        with self._lock:
            for env, (name, started, warned) in self._initializing.items():
                if not warned and now - started >= INIT_WARNING * limit:
                    self._initializing[env] = (name, started, True)
                    late.append((name, now - started))
        for name, taken in late:
            log.warning(
                "%s: an INIT has run %.1f s of its %g s limit; it is cut off there "
                "(Sandbox.Timedout)",
                name,
                taken,
                limit,
            )

    def _drop_dead(self, pool: Pool, env: Environment, dead: list[Environment]) -> None:
        """Forget an idle environment whose process is gone (the lock is held)."""
        pool.envs.discard(env)
        if env.init_type == PROVISIONED_INIT:
            self._set_provisioned(pool.version.function, -1)
        dead.append(env)

    def _bury(self, version: Version, dead: list[Environment]) -> None:
        """Release what dead idle environments held, say so, and replace provisioned ones."""
        for env in dead:
            log.warning(
                "%s: an idle environment (pid %d) had exited; it was not used",
                version.function.name,
                env.pid,
            )
            env.close()
        if any(e.init_type == PROVISIONED_INIT for e in dead) and not self._closed:
            threading.Thread(target=self._provision, args=(version,), daemon=True).start()

    def _release(self, call: _Call, env: Environment | None, alive: bool) -> None:
        self._give_back(call, env, alive)
        if call.kind == RESTORE and call.version.snapshot is not None:
            call.version.snapshot.refill()  # that cold start is over: spawn the next spare

    def _give_back(self, call: _Call, env: Environment | None, alive: bool) -> None:
        version = call.version
        fn = version.function
        pool = version.pool
        dispose = None
        with self._lock:
            self._in_flight -= 1
            fn.in_flight -= 1
            if call.kind != PROVISIONED:
                fn.on_demand -= 1
                if call.counted:
                    self._unreserved_used -= 1
            if env is None:
                return
            self._busy.discard(env)
            self._initializing.pop(env, None)  # (an INIT that raised)
            if alive and not (
                pool.retired
                or env.retired
                or self._closed
                or (
                    self.config.max_lifetime_s is not None
                    and time.monotonic() - env.created > self.config.max_lifetime_s
                )
            ):
                if call.kind == PROVISIONED:
                    pool.idle_provisioned.append(env)
                else:
                    pool.idle.append(env)
                return
            pool.envs.discard(env)
            if call.kind == PROVISIONED:
                self._set_provisioned(fn, -1)
            if alive:
                dispose = env
        if dispose is not None:
            self._dispose([dispose])
        else:
            env.close()  # its process is gone; release our ends of its pipes
        if call.kind == PROVISIONED and not self._closed and pool.provisioned_target:
            threading.Thread(target=self._provision, args=(version,), daemon=True).start()

    def _new_env(
        self, call: _Call, taken: Taken | None, env: Environment | None = None
    ) -> tuple[Environment, InitOutcome | None]:
        """A new environment for the call (`env`: a spare restore to use): restored from its
        version's snapshot when there is one, else started normally. A failed snapshot fails
        the call as a failed INIT would: its outcome comes back with an environment that is
        never started."""
        version = call.version
        if taken is not None and not taken.unsafe:
            call.kind = RESTORE
        if env is not None and not env.alive():  # a spare that died waiting
            env.close()
            env = None
        if env is None:
            init_type = SNAP_START if call.kind == RESTORE else ON_DEMAND
            env = self.adapter.environment(version, init_type, taken.server if taken else None)
        with self._lock:
            version.pool.envs.add(env)
            self._busy.add(env)
            self._initializing[env] = (version.function.name, time.monotonic(), False)
        if taken is not None and not taken.init.ok:
            init = taken.init
            return env, InitOutcome(init.kind, 0.0, error=init.error, exit=init.exit)
        return env, None

    def invoke(
        self,
        name: str,
        event: Any = None,
        qualifier: str | None = None,
        *,
        client_context: bytes | str | None = None,
        identity: bytes | str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
    ) -> InvokeResult:
        """Invoke a function synchronously (RequestResponse) and return its result.

        Raises TooManyRequestsError when throttled, ResourceNotFoundError for an unknown
        function or qualifier, RequestTooLargeError over 6 MB.
        """
        call = self._prepare(name, event, qualifier, client_context, identity, trace_id, request_id)
        while True:
            env = self._acquire(call)
            alive = False
            try:
                init = None
                if env is None:
                    snapshot = call.version.snapshot
                    taken = snapshot.get() if snapshot else None
                    spare = snapshot.spare() if snapshot and taken and taken.server else None
                    env, init = self._new_env(call, taken, spare)
                    if init is None:
                        init = env.start(self.config.init_timeout_s)
                    self._inited(env)
                    if not init.ok:
                        return self._record(self._finish(call, env, init, None))
                resp = env.invoke(call, call.version.timeout)
                if resp.kind == GONE and init is None:
                    continue  # it died idle, before the event reached it: run it elsewhere
                result = self._finish(call, env, init, resp)
                alive = result.report.status == "success"
                return self._record(result)
            finally:
                self._release(call, env, alive)

    async def ainvoke(
        self,
        name: str,
        event: Any = None,
        qualifier: str | None = None,
        *,
        client_context: bytes | str | None = None,
        identity: bytes | str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
    ) -> InvokeResult:
        """`invoke` for asyncio: many invocations at once from one thread."""
        call = self._prepare(name, event, qualifier, client_context, identity, trace_id, request_id)
        while True:
            env = self._acquire(call)
            alive = False
            try:
                init = None
                if env is None:
                    snapshot = call.version.snapshot
                    taken = await snapshot.aget() if snapshot else None
                    spare = await snapshot.aspare() if snapshot and taken and taken.server else None
                    env, init = self._new_env(call, taken, spare)
                    if init is None:
                        init = await env.astart(self.config.init_timeout_s)
                    self._inited(env)
                    if not init.ok:
                        return self._record(self._finish(call, env, init, None))
                # Alone in the loop, poll for the answer (up to spin_us) instead of sleeping in
                # the event loop and being woken: a wake-up costs as much as a whole invocation
                # on a VM. Not while other callers' requests may be waiting to be read.
                alone = self._in_flight == 1 and self.callers() <= 1
                resp = await env.ainvoke(call, call.version.timeout, alone)
                if resp.kind == GONE and init is None:
                    continue  # it died idle, before the event reached it: run it elsewhere
                result = self._finish(call, env, init, resp)
                alive = result.report.status == "success"
                return self._record(result)
            finally:
                self._release(call, env, alive)

    def invoke_async(
        self,
        name: str,
        event: Any = None,
        qualifier: str | None = None,
        *,
        client_context: bytes | str | None = None,
    ) -> str:
        """Accept an asynchronous (Event) invocation: persisted now, run in the background.

        Returns the request id the function will see. Example: svc.invoke_async("Hello", {})
        """
        if self._closed:
            raise EngineError("the runtime is closed")
        cc = client_context.encode() if isinstance(client_context, str) else client_context
        return self.event_queue().submit(
            name, encode_event(event, ASYNC_PAYLOAD_LIMIT), qualifier, cc or None
        )

    def event_queue(self) -> EventQueue:
        """The queue of asynchronous invocations, started on first use."""
        with self._lock:
            if self._events is None:
                self._events = EventQueue(
                    self, self.config.state_dir, delay_scale=self.config.async_delay_scale
                )
                self._events.start()
            return self._events

    def _record(self, result: InvokeResult) -> InvokeResult:
        self.writer.submit(result.record)
        return result

    # -- results ---------------------------------------------------------------------------

    def _init_text(
        self,
        version: Version,
        init_type: str,
        stream: str,
        init: InitOutcome,
        started: float,
        report: bool,
        restore: bool = False,
    ) -> str:
        """INIT_START, the INIT output, and INIT_REPORT when Lambda writes one; or a restore's
        RESTORE_START, its output (the after-restore hooks') and RESTORE_REPORT."""
        spec = version.spec
        json_logs = spec.log_format == "JSON"
        rv, rv_arn = self.adapter.runtime_version(spec.runtime)
        where = (spec.name, version.name, stream, spec.memory_size, started)
        if restore:
            text = restore_start(json_logs, rv, rv_arn, *where)
        else:
            text = init_start(json_logs, rv, rv_arn, init_type, *where)
        text += init.log.decode("utf-8", "replace")
        if text and not text.endswith("\n"):
            text += "\n"
        if restore:
            status = "success" if init.ok else "timeout" if init.kind == TIMED_OUT else "error"
            error_type = None if status == "success" else self._init_error(init)[0]
            ended = started + init.duration_ms / 1000
            text += restore_report(json_logs, init.duration_ms, status, error_type, ended)
        elif not init.ok:
            status = "timeout" if init.kind == TIMED_OUT else "error"
            text += init_report(
                json_logs,
                init.duration_ms,
                status,
                None if status == "timeout" else self._init_error(init)[0],
                init_type,
                started + init.duration_ms / 1000,
            )
        elif report:
            text += init_report(
                json_logs,
                init.duration_ms,
                "success",
                None,
                init_type,
                started + init.duration_ms / 1000,
            )
        return text

    def _init_error(self, init: InitOutcome) -> tuple[str, str]:
        """(errorType, errorMessage) of a failed INIT."""
        if init.kind == "error":
            try:
                err = json.loads(init.error)
                return str(err.get("errorType", "Runtime.Unknown")), str(
                    err.get("errorMessage", "")
                )
            except ValueError:
                return "Runtime.Unknown", "Unknown application error occurred"
        if init.kind == TIMED_OUT:
            return "Sandbox.Timedout", "INIT timed out"
        return "Runtime.ExitError", exit_message(init.exit)

    def _finish(
        self, call: _Call, env: Environment, init: InitOutcome | None, resp: Response | None
    ) -> InvokeResult:
        version = call.version
        if (
            init is None
            and resp is not None
            and resp.kind == OK
            and not resp.function_error
            and len(resp.payload) <= SYNC_PAYLOAD_LIMIT
            and (self.isolation.cgroups or resp.max_rss_kb <= version.memory << 10)
        ):
            # A warm invocation that worked: most of them. Nothing to decide.
            mem = version.memory
            duration = resp.duration_ms
            used = -(-resp.max_rss_kb // 1024)
            record = (
                call.request_id, version.function.name, version.name, call.qualifier, env.id,
                call.kind, call.started, (time.perf_counter_ns() - call.t0) / 1e6,
                resp.cpu_us / 1000, version.cpu_throttled, version.architecture, env.stream,
                version.json_logs, call.arn, "", resp.log, "", None, None,
                duration, billed_ms(duration), mem, used if used < mem else mem, None, None, None,
                "success", None, call.concurrency,
            )  # fmt: skip
            return InvokeResult(record, resp.payload)
        return self._finish_slow(call, env, init, resp)

    def _finish_slow(
        self, call: _Call, env: Environment, init: InitOutcome | None, resp: Response | None
    ) -> InvokeResult:
        version = call.version
        spec = version.spec
        rid = call.request_id
        json_logs = version.json_logs
        init_text = ""
        restore = call.kind == RESTORE
        if init is not None:
            init_text = self._init_text(
                version, env.init_type, env.stream, init, call.started, not init.ok, restore
            )
        mem = spec.memory_size
        init_ms = restore_ms = billed_restore = None
        if init is not None and init.ok:
            if restore:  # billed apart: the part the environment itself spent (its hooks)
                restore_ms, billed_restore = init.duration_ms, billed_ms(init.runtime_ms)
            else:
                init_ms = init.duration_ms
        function_error = None
        error_type = None
        status = "success"
        platform = ""
        raw = b""
        output = b""
        cpu_ms = 0.0
        if resp is None:  # INIT failed: the invocation gets INIT's error, as on Lambda
            assert init is not None
            error_type, message = self._init_error(init)
            if init.kind == "error":
                raw = init.error
            elif init.kind == TIMED_OUT:
                raw = self._timeout_payload(call, rid)
            else:
                raw = self._exit_payload(rid, error_type, message)
                platform = f"RequestId: {rid} Error: {message}\n{error_type}\n"
            function_error = "Unhandled"
            status = "timeout" if init.kind == TIMED_OUT else "error"
            duration = init.duration_ms
            max_mb = -(-init.max_rss_kb // 1024)
        else:
            output = resp.log
            duration = resp.duration_ms
            max_mb = -(-resp.max_rss_kb // 1024)
            cpu_ms = resp.cpu_us / 1000
            if resp.kind == OK and not self.isolation.cgroups and resp.max_rss_kb > mem * 1024:
                env.kill()  # over its memory between two watchdog samples
                env.wait(5.0)
                resp = Response(
                    EXITED,
                    exit=ExitStatus(-9, oom=True),
                    log=resp.log,
                    duration_ms=resp.duration_ms,
                )
            if resp.kind == OK:
                raw = resp.payload
                if resp.function_error:
                    function_error = "Unhandled"
                    error_type = _error_type(raw)
                elif len(raw) > SYNC_PAYLOAD_LIMIT:
                    function_error = "Unhandled"
                    error_type = "Function.ResponseSizeTooLarge"
                    raw = json.dumps(
                        {
                            "errorMessage": "Response payload size exceeded maximum allowed "
                            "payload "
                            f"size ({SYNC_PAYLOAD_LIMIT} bytes).",
                            "errorType": error_type,
                        }
                    ).encode()
            elif resp.kind == TIMED_OUT:
                function_error = "Unhandled"
                error_type = "Sandbox.Timedout"
                status = "timeout"
                duration = spec.timeout * 1000.0
                raw = self._timeout_payload(call, rid)
                if not json_logs:
                    platform = json.loads(raw)["errorMessage"] + "\n"
            else:
                oom = env.oom or (resp.exit is not None and resp.exit.oom)
                error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
                message = exit_message(ExitStatus(-9) if oom else resp.exit)
                function_error = "Unhandled"
                status = "error"
                duration = (time.perf_counter_ns() - call.t0) / 1e6 - (init_ms or restore_ms or 0.0)
                if oom:
                    max_mb = mem
                raw = self._exit_payload(rid, error_type, message)
                if not json_logs:
                    platform = f"RequestId: {rid} Error: {message}\n{error_type}\n"
        if error_type == "Runtime.ImportModuleError" and spec.uninstalled:
            self._hint_build(spec, raw)
        billed_init = init_ms if env.init_type == ON_DEMAND else None
        record = (
            rid, version.function.name, version.name, call.qualifier, env.id, call.kind,
            call.started, (time.perf_counter_ns() - call.t0) / 1e6, cpu_ms,
            version.cpu_throttled, version.architecture, env.stream, json_logs, call.arn,
            init_text, output, platform, function_error, error_type,
            duration, billed_ms(duration, billed_init), mem, min(max_mb, mem), init_ms,
            restore_ms, billed_restore, status, error_type if status == "error" else None,
            call.concurrency,
        )  # fmt: skip
        return InvokeResult(record, raw)

    def _hint_build(self, spec: FunctionSpec, raw: bytes) -> None:
        """Say, once per function and module, that an import failed for want of a build."""
        m = re.search(r"No module named '([^'.]+)", raw.decode("utf-8", "replace"))
        if not m or (spec.name, m.group(1)) in self._hinted:
            return
        module = m.group(1)
        self._hinted.add((spec.name, module))
        named = [d for d in spec.uninstalled if normalized(module) in (d, MODULES.get(d))]
        if named:
            log.warning(
                "%s: %s is in its requirements.txt, which is not installed (its sources run, "
                "not a build): `warmstart build %s` (or `sam build`) installs it",
                spec.name, module, spec.logical_id or spec.name,
            )  # fmt: skip
        else:
            log.warning(
                "%s: %s is not in its requirements.txt (nor in Lambda's runtime): add it, then "
                "`warmstart build %s`",
                spec.name, module, spec.logical_id or spec.name,
            )  # fmt: skip

    def _timeout_payload(self, call: _Call, rid: str) -> bytes:
        timeout = call.version.spec.timeout
        return json.dumps(
            {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"{iso_ms(time.time())} {rid} "
                f"Task timed out after {timeout:.2f} seconds",
            }
        ).encode()

    @staticmethod
    def _exit_payload(rid: str, error_type: str, message: str) -> bytes:
        return json.dumps(
            {"errorType": error_type, "errorMessage": f"RequestId: {rid} Error: {message}"}
        ).encode()

    # -- housekeeping ----------------------------------------------------------------------

    def _dispose(self, envs: list[Environment]) -> None:
        """Shut environments down and release their resources once they are gone."""
        if not envs:
            return
        for env in envs:
            env.shutdown()
        for env in envs:
            if env.wait(2.0) is None:
                env.kill()
                env.wait(5.0)
            env.close()

    def _reaper(self) -> None:
        """Housekeeping: shut down environments idle too long or too old; notice code changes."""
        with contextlib.suppress(OSError, AttributeError):  # never in the way of invocations
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        cfg = self.config
        interval = min(max(min(cfg.idle_timeout_s, cfg.init_timeout_s) / 10, 0.05), CODE_CHECK_S)
        if cfg.max_lifetime_s:
            interval = min(interval, max(cfg.max_lifetime_s / 10, 0.05))
        next_code_check = 0.0
        while not self._stop.wait(interval):
            self._reap()
            self._warn_long_inits()
            if cfg.watch_code and time.monotonic() >= next_code_check:
                self._check_code()
                next_code_check = time.monotonic() + CODE_CHECK_S

    def _reap(self) -> None:
        cfg = self.config
        now = time.monotonic()
        expired: list[Environment] = []
        replenish: list[Version] = []
        dead: dict[Version, list[Environment]] = {}
        with self._lock:
            for fn in self.functions.values():
                for v in [fn.latest, *fn.versions.values()]:
                    pool = v.pool
                    keep = []
                    for env in pool.idle:
                        if not env.alive():
                            self._drop_dead(pool, env, dead.setdefault(v, []))
                        elif now - env.last_used > cfg.idle_timeout_s or (
                            cfg.max_lifetime_s and now - env.created > cfg.max_lifetime_s
                        ):
                            expired.append(env)
                            pool.envs.discard(env)
                        else:
                            keep.append(env)
                    pool.idle[:] = keep
                    keep = []
                    for env in pool.idle_provisioned:
                        if not env.alive():
                            self._drop_dead(pool, env, dead.setdefault(v, []))
                        elif cfg.max_lifetime_s and now - env.created > cfg.max_lifetime_s:
                            expired.append(env)
                            pool.envs.discard(env)
                            self._set_provisioned(fn, -1)
                            replenish.append(v)
                        else:
                            keep.append(env)
                    pool.idle_provisioned[:] = keep
        for v, envs in dead.items():
            self._bury(v, envs)
        self._dispose(expired)
        for v in set(replenish):
            self._provision(v)

    def _check_code(self) -> None:
        """Replace the environments of a function whose code or layers changed on disk."""
        for fn in list(self.functions.values()):
            versions = [fn.latest, *fn.versions.values()]
            snapshots = [v.snapshot for v in versions if v.snapshot is not None]
            if not any(v.pool.envs for v in versions) and not snapshots:
                self._code.pop(fn.name, None)  # nothing runs the old code: nothing to replace
                continue
            spec = fn.latest.spec
            folders = (spec.code_dir, *spec.layers)
            # The versions that run these folders (a version published before UpdateFunctionCode
            # runs its own, which this watch leaves alone).
            running = [v for v in versions if (v.spec.code_dir, *v.spec.layers) == folders]
            now = (folders, fingerprint(list(folders)))
            before = self._code.get(fn.name)
            if before is None:  # the first look since environments started: the files were
                # as they are if none changed after the oldest of them started (its INIT read
                # them then); one edited in between is a change too
                envs = (e.created for v in running for e in v.pool.envs)
                oldest = min(envs, default=time.monotonic())
                started_ns = (time.time() - (time.monotonic() - oldest)) * 1e9
                before = now if now[1][1] <= started_ns else (folders, (0, 0, 0))
            self._code[fn.name] = now
            if now != before:
                if before[0] != folders:  # new code elsewhere (UpdateFunctionCode): $LATEST's
                    continue  # environments went with that change; versions keep theirs
                log.info("%s: code changed; its environments are replaced", fn.name)
                for v in running:
                    if v.snapshot is not None:
                        v.snapshot.discard()  # taken again, from the new code, when next needed
                    self.recycle(fn.name, v.name)

    def _watchdog(self) -> None:
        """Without cgroups: kill an environment whose RSS goes over its memory size."""
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(WATCHDOG_INTERVAL_S):
            with self._lock:
                busy = list(self._busy)
            for env in busy:
                if not env.pid:
                    continue
                try:
                    with open(f"/proc/{env.pid}/statm", "rb") as f:
                        rss = int(f.read().split()[1]) * page
                except (OSError, ValueError, IndexError):
                    continue
                if rss > env.memory_mb << 20:
                    env.oom = True
                    env.kill()

    def environments(self, name: str | None = None) -> list[dict[str, Any]]:
        """What is running: one dict per live environment (for tests and status output)."""
        out = []
        with self._lock:
            for fn in self.functions.values():
                if name and fn.name != name:
                    continue
                for v in [fn.latest, *fn.versions.values()]:
                    idle = set(v.pool.idle) | set(v.pool.idle_provisioned)
                    for env in v.pool.envs:
                        out.append(
                            {
                                "function": fn.name,
                                "version": v.name,
                                "id": env.id,
                                "pid": env.pid,
                                "init_type": env.init_type,
                                "state": "idle" if env in idle else "busy",
                                "invocations": env.invocations,
                                "stream": env.stream,
                            }
                        )
        return out

    def stop_events(self, timeout_s: float = 0.0) -> None:
        """Stop running asynchronous events (those running stay queued for the next start);
        nothing to do if none were started. Example: svc.stop_events()"""
        with self._lock:
            events = self._events
        if events is not None:
            events.close(timeout_s)

    def end_in_flight(self) -> int:
        """End every invocation still running, and say how many there were.

        Each busy environment is killed, so its invocation finishes the way one whose runtime
        exits does: its caller gets the result (Runtime.ExitError) and its record is written.
        `serve` calls it when its graceful shutdown time is up. Example: svc.end_in_flight()
        """
        with self._lock:
            busy = list(self._busy)
        for env in busy:
            env.kill()
        return len(busy)

    def close(self) -> None:
        """Shut every environment down and stop; nothing is left running. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            envs = []
            snapshots = []
            for fn in self.functions.values():
                for v in [fn.latest, *fn.versions.values()]:
                    envs += v.pool.take_idle()
                    if v.snapshot is not None:
                        snapshots.append(v.snapshot)
        for snapshot in snapshots:
            snapshot.discard(closing=True)
        if self._events is not None:
            self._events.close()
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._dispose(envs)
        self.adapter.close()  # kills whatever is still running (busy or initializing)
        self.writer.close()
        self.isolation.close()
        self._cleanup_dirs()

    def _cleanup_dirs(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _why_not(spec: FunctionSpec) -> str:
    """Why a function cannot be invoked here."""
    return spec.unsupported or f"{spec.name}: runtime {spec.runtime} is not supported yet"


def _error_type(raw: bytes) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        value = json.loads(raw).get("errorType")
        return str(value) if value else None
    return None


def _throttle_record(call: _Call, reason: str) -> tuple[Any, ...]:
    """A throttled invocation, recorded like the others (no environment, so no log)."""
    v = call.version
    return (
        call.request_id, v.function.name, v.name, call.qualifier, None, "throttled", call.started,
        (time.perf_counter_ns() - call.t0) / 1e6, None, None, v.architecture, None, v.json_logs,
        call.arn, "", b"", "", None, reason,
        None, None, v.memory, None, None, None, None, "throttled", None, v.function.in_flight,
    )  # fmt: skip
