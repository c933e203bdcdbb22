"""uvicorn's httptools protocol, made cheaper per request for `warmstart serve`.

On a VM, waking a process is most of the cost of a small response. `CoalescingProtocol` (both
ports): uvicorn writes a response's head and its body with two `send` calls, each waking the
client; here a request's writes are held until the response is complete (or the event loop
comes round, for streamed bodies and `100 Continue`) and sent together. `InvokeProtocol` (the
Lambda API port) answers Invoke without ASGI, and writes the answers that are ready in the same
turn of the loop in one run.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .lambda_api import INVOKE_PATH, LambdaApi, invoke_limit

__all__ = ["CoalescingProtocol", "InvokeProtocol"]

log = logging.getLogger("warmstart")

_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class _Coalescing:
    """The transport a request/response cycle writes through; everything but writes passes."""

    __slots__ = ("_done", "_loop", "_parts", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        done: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._done = done
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(data)

    def flush(self) -> None:
        parts = self._parts
        if parts:
            self._parts = []
            if not self._transport.is_closing():
                self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def complete(self) -> None:
        """The cycle's response is whole: send it, then let uvicorn go on."""
        self.flush()
        self._done()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.Config(http=CoalescingProtocol)`."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # not an upgrade: a new request
            out = _Coalescing(self.transport, self.loop, cycle.on_response)
            cycle.transport = out  # type: ignore[assignment]
            cycle.on_response = out.complete


class _NoEvent:
    """What uvicorn's connection code sets on a request's `message_event`; an Invoke has none."""

    @staticmethod
    def set() -> None:
        pass


_NO_EVENT = _NoEvent()
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Invoke:
    """An Invoke request on one connection: its body as it arrives, then the answer's task.

    It stands where uvicorn keeps its request/response cycle, with the attributes uvicorn's
    connection code reads (`response_complete`, `keep_alive`, `disconnected`, `message_event`).
    """

    __slots__ = (
        "complete", "disconnected", "headers", "keep_alive", "limit", "name", "parts", "path",
        "query", "response_complete", "size", "turn", "waiting_for_100_continue",
    )  # fmt: skip
    message_event = _NO_EVENT

    def __init__(
        self,
        name: str,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        limit: int,
        keep_alive: bool,
        expect_100: bool,
    ) -> None:
        self.name = name
        self.path = path
        self.query = query
        self.headers = headers
        self.limit = limit
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100
        self.parts: list[bytes] = []
        self.size = 0
        self.complete = False  # the whole body is in
        self.turn = False  # the requests before it on the connection are answered
        self.disconnected = False
        self.response_complete = False

    def body(self) -> bytes | None:
        if self.size > self.limit:
            return None
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)


class _Writes:
    """Responses written together, once per turn of the event loop.

    Each write that finds its client asleep wakes it, which on a VM costs more than the write.
    A client reading many connections from one thread (wrk, a load generator, an asyncio app)
    is woken by the first of a run of writes and finds the others ready: measured with 16
    connections on 2 cores, 12% more invocations a second than writing each one at once.
    """

    __slots__ = ("loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[tuple[asyncio.Transport, bytes, bool]] = []

    def add(self, transport: asyncio.Transport, data: bytes, close: bool) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append((transport, data, close))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        for transport, data, close in pending:
            if not transport.is_closing():
                transport.write(data)
            if close:
                transport.close()


_writes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes] = weakref.WeakKeyDictionary()


class InvokeProtocol(CoalescingProtocol):
    """`warmstart serve`'s Lambda API port: Invoke is answered without ASGI, the rest with it.

    Invoke is the call that comes thousands of times a second. Its request goes straight from
    the parser's callbacks to `LambdaApi.answer_invoke` and its answer out in one write: no
    ASGI scope, messages or response validation, which cost as much as the engine's own work
    per invocation. Keep-alive, pipelining, flow control, timeouts and graceful shutdown stay
    uvicorn's. Pass as `uvicorn.Config(http=functools.partial(InvokeProtocol, api=api))`.
    """

    def __init__(self, *args: Any, api: LambdaApi, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = api
        loop = self.loop
        self.writes = _writes.get(loop) or _writes.setdefault(loop, _Writes(loop))

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.get_method() == b"POST" and not parser.should_upgrade():
            url = httptools.parse_url(self.url)
            m = INVOKE_PATH.match(url.path)
            if m is not None:
                self._begin(m.group(1).decode("latin-1"), url.path, url.query or b"")
                return
        super().on_headers_complete()

    def _begin(self, name: str, path: bytes, query: bytes) -> None:
        parser = self.parser
        headers = self.headers
        invoke = _Invoke(
            name,
            path,
            query,
            headers,
            invoke_limit(headers),
            parser.get_http_version() != "1.0" and parser.should_keep_alive(),
            self.expect_100_continue,
        )
        before = self.cycle
        self.cycle = invoke  # type: ignore[assignment]
        if before is None or before.response_complete:
            self._take_turn(invoke)
        else:  # pipelined: uvicorn starts it when the one before is answered
            self.flow.pause_reading()
            self.pipeline.appendleft((invoke, None))  # type: ignore[arg-type]

    def _take_turn(self, invoke: _Invoke) -> None:
        invoke.turn = True
        if invoke.waiting_for_100_continue and not invoke.complete:
            invoke.waiting_for_100_continue = False
            self.writes.add(self.transport, _CONTINUE, False)  # after the answers before it
        if invoke.complete:
            self._answer(invoke)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if isinstance(cycle, _Invoke):
            self._take_turn(cycle)
        else:
            super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        invoke = self.cycle
        if not isinstance(invoke, _Invoke):
            super().on_body(body)
            return
        invoke.size += len(body)
        if invoke.size <= invoke.limit:  # past it, the rest is read and dropped
            invoke.parts.append(body)

    def on_message_complete(self) -> None:
        invoke = self.cycle
        if not isinstance(invoke, _Invoke):
            super().on_message_complete()
            return
        invoke.complete = True
        if invoke.turn:
            self._answer(invoke)

    def _answer(self, invoke: _Invoke) -> None:
        task = self.loop.create_task(self._respond(invoke))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _respond(self, invoke: _Invoke) -> None:
        try:
            status, body, headers = await self.api.answer_invoke(
                invoke.name, invoke.path, invoke.query, invoke.headers, invoke.body()
            )
        except asyncio.CancelledError:  # shutdown's deadline (a client hanging up does not)
            self.transport.close()
            raise
        except Exception:  # a defect: answer_invoke shapes every error it expects
            log.exception("Invoke failed")
            status, body, headers = 500, b"Internal Server Error", [_TEXT]
            invoke.keep_alive = False
        invoke.response_complete = True
        transport = self.transport
        if not transport.is_closing():
            head = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, *headers):
                head += (name, b": ", value, b"\r\n")
            head += (b"content-length: ", str(len(body)).encode(), b"\r\n")
            if not invoke.keep_alive:
                head.append(b"connection: close\r\n")
            head += (b"\r\n", body)
            self.writes.add(transport, b"".join(head), not invoke.keep_alive)
        self.on_response_complete()
