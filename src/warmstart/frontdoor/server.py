"""`warmstart serve`: the Lambda API and API Gateway on two ports, in one process and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import math
import resource
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, TextIO

import uvicorn

from ..api import Runtime
from ..errors import TemplateError, WarmstartError
from ..observe.console import InvocationConsole
from ..observe.metrics import Metrics
from .apigw import PAYLOAD_LIMIT, ApiGateway, Route, routes
from .guard import Guard
from .http import CoalescingProtocol, InvokeProtocol, Limits, expire
from .jwt_auth import KeySet
from .lambda_api import MANAGEMENT_BODY_LIMIT, LambdaApi
from .sigv4 import Verifier

__all__ = ["Endpoints", "is_loopback", "open_files", "serve"]

log = logging.getLogger("warmstart")

# The largest body each port takes (CreateFunction's zip, base64; API Gateway's payload), and
# room for the head: a request past it is cut off (413) whatever its kind.
LAMBDA_REQUEST_BYTES = MANAGEMENT_BODY_LIMIT + 64 * 1024
API_REQUEST_BYTES = PAYLOAD_LIMIT + 64 * 1024
HEAD_TIMEOUT_S = 10.0
# After --graceful-timeout the invocations still running are ended; their answers (and those of
# the API port) then have this long to go out before uvicorn cancels what is left.
ANSWER_GRACE_S = 5


@dataclass(frozen=True)
class Endpoints:
    """Where a running server listens, and what it serves."""

    lambda_url: str
    api_url: str | None
    routes: list[Route]  # those that run a function (not the OPTIONS routes SAM adds for CORS)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us: two servers share one loop and one shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it on Linux; plain asyncio works too
        asyncio.run(main)
    else:
        uvloop.run(main)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_files() -> int:
    """How many files this process may open, its soft limit raised to the hard one first.

    Each connection takes a descriptor: a default soft limit of 1,024 lets a few hundred slow
    clients leave no room for environments' pipes. Example: open_files()  # 1048576
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, e)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _max_connections(files: int, ports: int, concurrency: int) -> int:
    """Connections per port that leave room for the environments' descriptors (a few each)."""
    return max(64, min(10_000, (files - 4 * concurrency - 256) // ports))


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a busy port is a clear error before anything runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise WarmstartError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    runtime: Runtime,
    *,
    host: str = "127.0.0.1",
    port: int = 3001,
    api_port: int = 3000,
    credentials: tuple[str, str] | None = None,
    graceful_s: float = 10.0,
    guard: Guard | None = None,
    request_timeout_s: float = 60.0,
    max_connections: int | None = None,
    console: TextIO | None = None,
    on_ready: Callable[[Endpoints], None] | None = None,
    jwks: list[str] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then let in-flight work finish (up to `graceful_s`), end
    what still runs (its callers get a 5xx, its records are written) and shut every environment
    down. Binding anything but loopback requires credentials: requests to the Lambda API must
    then be signed with them (SigV4), as AWS requires. `guard`: the Host and Origin rules
    (default: loopback names only, no web page); `request_timeout_s`: how long a request may
    take to come whole; `max_connections`: per port (default: from the open files limit);
    `console`: where a line per invocation goes (None: nowhere); `jwks`: files or loopback URLs
    of JSON Web Key Sets, to check JWT and Cognito authorizers' token signatures with.

    Example: serve(Runtime.from_template("template.yaml"), port=3001, api_port=3000)
    """
    if not is_loopback(host) and credentials is None:
        raise WarmstartError(
            f"listening on {host} needs credentials (--credentials KEY:SECRET): the Lambda API "
            "then accepts only requests signed with them"
        )
    guard = guard or Guard(bound=host)
    verifier = Verifier(*credentials) if credentials else None
    service = runtime.service
    template = runtime.template
    try:
        table = routes(
            [service.function(n).latest.spec for n in runtime.functions],
            template.resources if template else {},
            template.api_globals if template else {},
            KeySet(jwks) if jwks else None,
        )
    except WarmstartError as e:
        runtime.close()
        if isinstance(e, TemplateError) and template is not None:
            raise e.in_file(str(template.path)) from None
        raise
    metrics = Metrics(service)
    service.writer.observers.append(metrics.observe)
    lines = InvocationConsole(console) if console is not None else None
    if lines is not None:  # a line per invocation, written off the invoke path
        service.writer.observers.append(lines.observe)
    sockets = [_bind(host, port)]
    if table:
        sockets.append(_bind(host, api_port))
    files = open_files()
    limits = Limits(
        head_timeout_s=min(HEAD_TIMEOUT_S, request_timeout_s),
        request_timeout_s=request_timeout_s,
        request_bytes=LAMBDA_REQUEST_BYTES,
        max_connections=max_connections
        or _max_connections(files, len(sockets), service.config.account_concurrency),
    )
    api = LambdaApi(runtime, verifier, metrics, guard=guard)
    apps: list[tuple[Any, Any]] = [(api, functools.partial(InvokeProtocol, api=api, limits=limits))]
    if table:
        api_limits = dataclasses.replace(limits, request_bytes=API_REQUEST_BYTES)
        apps.append((
            ApiGateway(runtime, table, guard),
            functools.partial(CoalescingProtocol, limits=api_limits),
        ))  # fmt: skip
    servers = [
        _Server(uvicorn.Config(
            app, loop="uvloop", http=protocol, lifespan="off", log_level="warning",
            access_log=False, timeout_graceful_shutdown=math.ceil(graceful_s) + ANSWER_GRACE_S,
            ws="none", proxy_headers=False, server_header=False,
        ))
        for app, protocol in apps
    ]  # fmt: skip
    connections = [s.server_state.connections for s in servers]
    service.callers = lambda: sum(map(len, connections))  # twice per invocation: no generator
    shown = host if ":" not in host else f"[{host}]"
    endpoints = Endpoints(
        f"http://{shown}:{sockets[0].getsockname()[1]}",
        f"http://{shown}:{sockets[1].getsockname()[1]}" if table else None,
        [r for r in table if r.function],
    )
    service.event_queue()  # asynchronous events accepted earlier run now

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def stop(sig: int) -> None:
            for s in servers:
                if s.should_exit:
                    s.force_exit = True  # a second Ctrl-C: do not wait any longer
                s.should_exit = True
            stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop, sig)
        runs = [
            asyncio.ensure_future(s.serve(sockets=[sock]))
            for s, sock in zip(servers, sockets, strict=True)
        ]
        served = asyncio.gather(*runs)
        timer = asyncio.ensure_future(_time_out_slow_requests(servers))
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            while not all(s.started for s in servers) and not any(r.done() for r in runs):
                await asyncio.sleep(0.01)
            if on_ready is not None and all(s.started for s in servers):
                on_ready(endpoints)
            either: list[asyncio.Future[Any]] = [served, stopped]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not served.done():
                done, _ = await asyncio.wait([served], timeout=graceful_s)
                if not done:
                    await _end_in_flight(runtime, servers)
            await served
        finally:
            timer.cancel()
            stopped.cancel()

    try:
        _run(main())
    finally:
        for sock in sockets:
            sock.close()
        runtime.close()  # (its records writer runs the observers one last time)
        if lines is not None:
            lines.flush()
        api.discard_now()  # code folders of updated or deleted functions: nothing runs them now


async def _time_out_slow_requests(servers: list[_Server]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(1.0)
        now = loop.time()
        for s in servers:
            expire(s.server_state.connections, now)


async def _end_in_flight(runtime: Runtime, servers: list[_Server]) -> None:
    """The graceful shutdown time is up: end the invocations still running, so that their
    callers get an answer (a 5xx) and their records are written before the process exits."""
    for s in servers:
        for connection in s.server_state.connections:
            if isinstance(connection, InvokeProtocol):
                connection.ending = True
    service = runtime.service
    # The event worker's running events stay queued for the next start, rather than failing.
    await asyncio.get_running_loop().run_in_executor(None, service.stop_events)
    ended = service.end_in_flight()
    if ended:
        log.warning(
            "%d invocation(s) still running when the graceful shutdown time was up were ended",
            ended,
        )
