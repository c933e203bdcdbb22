"""`warmstart serve`: the Lambda API and API Gateway on two ports, in one process and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from ..api import Runtime
from ..errors import WarmstartError
from ..observe.metrics import Metrics
from .apigw import ApiGateway, Route, routes
from .http import CoalescingProtocol, InvokeProtocol
from .lambda_api import LambdaApi
from .sigv4 import Verifier

__all__ = ["Endpoints", "is_loopback", "serve"]

log = logging.getLogger("warmstart")


@dataclass(frozen=True)
class Endpoints:
    """Where a running server listens, and what it serves."""

    lambda_url: str
    api_url: str | None
    routes: list[Route]


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
    on_ready: Callable[[Endpoints], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then let in-flight work finish (up to `graceful_s`) and
    shut every environment down. Binding anything but loopback requires credentials: requests to
    the Lambda API must then be signed with them (SigV4), as AWS requires.

    Example: serve(Runtime.from_template("template.yaml"), port=3001, api_port=3000)
    """
    if not is_loopback(host) and credentials is None:
        raise WarmstartError(
            f"listening on {host} needs credentials (--credentials KEY:SECRET): the Lambda API "
            "then accepts only requests signed with them"
        )
    verifier = Verifier(*credentials) if credentials else None
    service = runtime.service
    metrics = Metrics(service)
    service.writer.observers.append(metrics.observe)
    template = runtime.template
    table = routes(list(service.function(n).latest.spec for n in runtime.functions),
                   template.resources if template else {})  # fmt: skip
    sockets = [_bind(host, port)]
    if table:
        sockets.append(_bind(host, api_port))
    api = LambdaApi(runtime, verifier, metrics)
    apps: list[tuple[Any, Any]] = [(api, functools.partial(InvokeProtocol, api=api))]
    if table:
        apps.append((ApiGateway(runtime, table), CoalescingProtocol))
    servers = [
        _Server(uvicorn.Config(
            app, loop="uvloop", http=protocol, lifespan="off", log_level="warning",
            access_log=False, timeout_graceful_shutdown=max(1, round(graceful_s)), ws="none",
            proxy_headers=False, server_header=False,
        ))
        for app, protocol in apps
    ]  # fmt: skip
    connections = [s.server_state.connections for s in servers]
    service.callers = lambda: sum(map(len, connections))  # twice per invocation: no generator
    shown = host if ":" not in host else f"[{host}]"
    endpoints = Endpoints(
        f"http://{shown}:{sockets[0].getsockname()[1]}",
        f"http://{shown}:{sockets[1].getsockname()[1]}" if table else None,
        table,
    )
    service.event_queue()  # asynchronous events accepted earlier run now

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop(sig: int) -> None:
            for s in servers:
                if s.should_exit:
                    s.force_exit = True  # a second Ctrl-C: do not wait any longer
                s.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop, sig)
        runs = [
            asyncio.ensure_future(s.serve(sockets=[sock]))
            for s, sock in zip(servers, sockets, strict=True)
        ]
        while not all(s.started for s in servers) and not any(r.done() for r in runs):
            await asyncio.sleep(0.01)
        if on_ready is not None and all(s.started for s in servers):
            on_ready(endpoints)
        await asyncio.gather(*runs)

    try:
        _run(main())
    finally:
        for sock in sockets:
            sock.close()
        runtime.close()
