"""uvicorn's httptools protocol for `warmstart serve`: cheaper per request, and bounded.

On a VM, waking a process is most of the cost of a small response. `CoalescingProtocol` (both
ports): uvicorn writes a response's head and its body with two `send` calls, each waking the
client; here a request's writes are held until the response is complete (or the event loop
comes round, for streamed bodies and `100 Continue`) and sent together. `InvokeProtocol` (the
Lambda API port) answers Invoke without ASGI, and writes the answers that are ready in the same
turn of the loop in one run.

Both hold a client to `Limits` before its request is known: the size of its head, the time it
takes to send it, the bytes of a request and the number of connections, so that slow or
oversized requests cannot take the server's memory or file descriptors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..engine.service import new_request_id
from .asgi import text_headers
from .guard import Refusal
from .lambda_api import INVOKE_PATH, ApiError, LambdaApi, Response, invoke_limit

__all__ = ["CoalescingProtocol", "InvokeProtocol", "Limits", "expire"]

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


@dataclass(frozen=True)
class Limits:
    """What one client may hold of a port before its request is answered.

    `head_bytes`: the request line and headers (431 past it). API Gateway takes at most 10,240
    bytes of request line and header values (HTTP and REST APIs); a Lambda API call carries at
    most a 3,583-byte client context, a session token and a signature. 16 KiB, names and line
    ends counted, passes every request those take and bounds what a connection holds before
    its request is known. `head_timeout_s`: from the connection (or the request's first byte)
    to the end of its head; `request_timeout_s`: from the first byte to the last (408, then the
    connection is closed). `request_bytes`: a whole request, above the port's largest body,
    so that nothing (a body, chunked trailers) is read without end. `max_connections`: more
    are answered 503 and closed, so slow clients cannot take every file descriptor.

    Example: Limits(request_timeout_s=300)  # large zips over a slow link
    """

    head_bytes: int = 16 * 1024
    head_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    request_bytes: int = 72 * 1024 * 1024
    max_connections: int = 1024


class _Refused(Exception):
    """Raised in a parser callback: answer (status, error code, message), then close."""


class CoalescingProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.Config(http=functools.partial(CoalescingProtocol, limits=...))`."""

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or Limits()
        self.since: float | None = None  # when the request being read began (None: none is)
        self.size = 0  # bytes of it read so far
        self.head_done = False
        # A read that ends a request may begin the next: those bytes are not counted, and that
        # request's head is measured whole when it is complete.
        self.carried = False
        self.uncounted = False
        # Of the request's headers, those the Lambda API's guard reads (InvokeProtocol notes
        # them as they come).
        self.host: bytes | None = None
        self.hosts = 0
        self.origin: bytes | None = None
        self.fetch_site: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                503,
                "ServiceUnavailableException",
                f"Too many connections (over {self.limits.max_connections}): try again later",
            )
            return
        self.since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.since = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.size += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
            self.carried = False
        except httptools.HttpParserCallbackError as e:
            refused = e.__context__
            if isinstance(refused, _Refused):
                self._refuse(*refused.args)
            else:
                self._refuse(400, "BadRequestException", "Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self._refuse(400, "BadRequestException", "Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if not self.head_done:
            if self.size > self.limits.head_bytes:  # checked per read: never held whole
                self._refuse(*self._head_too_large())
        elif self.size > self.limits.request_bytes:
            self._refuse(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {self.limits.request_bytes} bytes",
            )

    def _head_too_large(self) -> tuple[int, str, str]:
        return (
            431,
            "RequestHeaderFieldsTooLargeException",
            f"The request line and headers must be smaller than {self.limits.head_bytes} bytes",
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.since is None:
            self.since = self.loop.time()
        self.uncounted = self.carried

    def on_headers_complete(self) -> None:
        self._end_head()
        self._start_cycle()
        self.headers = []  # a chunked body's trailers go here, not to the request (RFC 9110)

    def _end_head(self) -> None:
        # The count of bytes read may hold some of the body, read with the head.
        if self.size > self.limits.head_bytes or self.uncounted:
            head = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
            if head > self.limits.head_bytes:
                raise _Refused(*self._head_too_large())
        self.head_done = True

    def _start_cycle(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # not an upgrade: a new request
            out = _Coalescing(self.transport, self.loop, cycle.on_response)
            cycle.transport = out  # type: ignore[assignment]
            cycle.on_response = out.complete

    def on_message_complete(self) -> None:
        self._end_request()
        super().on_message_complete()

    def _end_request(self) -> None:
        self.since = None
        self.size = 0
        self.carried = True
        self.head_done = False
        self.host = self.origin = self.fetch_site = None
        self.hosts = 0

    def expire(self, now: float) -> None:
        """Time the request being read out if it is too slow in coming (see Limits)."""
        since = self.since
        if since is None or self.flow.read_paused:  # not reading, or not the client's delay
            return
        if self.head_done:
            if now - since <= self.limits.request_timeout_s:
                return
            message = f"The request did not come whole within {self.limits.request_timeout_s} s"
        else:
            if now - since <= self.limits.head_timeout_s:
                return
            if not self.size and not self.uncounted:  # an idle connection: closed, no word
                self.since = None
                self.transport.close()
                return
            message = f"The request's headers did not come within {self.limits.head_timeout_s} s"
        self._refuse(408, "RequestTimeoutException", message)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer (if no answer to an earlier request is under way) and close the connection."""
        self.since = None
        transport = self.transport
        if transport.is_closing():
            return
        transport.pause_reading()
        self._flush()
        if transport.is_closing():  # an earlier answer closed it
            return
        cycle = self.cycle
        if self.head_done:  # the cycle is this request's, unless it waits behind another
            answerable = not self.pipeline and not cycle.response_started
        else:
            answerable = cycle is None or cycle.response_complete
        if answerable:
            body = json.dumps({"message": message}).encode()
            transport.write(
                b"".join(
                    (
                        STATUS_LINE[status],
                        b"content-type: application/json\r\nx-amzn-errortype: ",
                        code.encode(),
                        b"\r\ncontent-length: ",
                        str(len(body)).encode(),
                        b"\r\nconnection: close\r\n\r\n",
                        body,
                    )
                )
            )
        transport.close()

    def _flush(self) -> None:
        """Write what this connection's earlier answers left pending (InvokeProtocol)."""


def expire(connections: Iterable[object], now: float) -> None:
    """Time out the requests of a server's connections that are too slow in coming.

    Example: expire(server.server_state.connections, loop.time())  # once a second
    """
    for connection in list(connections):
        if isinstance(connection, CoalescingProtocol):
            connection.expire(now)


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
        "answer", "complete", "cors", "disconnected", "headers", "keep_alive", "limit", "name",
        "parts", "path", "query", "response_complete", "size", "turn", "waiting_for_100_continue",
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
        self.answer: Response | None = None  # refused from its headers: this, body unread
        self.cors: list[tuple[bytes, bytes]] | None = None  # for an origin the user allowed

    @property
    def response_started(self) -> bool:
        return self.response_complete  # its answer is written whole

    def refuse(self, answer: Response) -> None:
        self.answer = answer
        self.limit = -1  # nothing of its body is kept
        self.keep_alive = False  # nor read: the connection closes once it is answered
        self.waiting_for_100_continue = False

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
    per invocation. The Lambda API's guard (Host, Origin) and what can be checked of a
    signature are applied from the headers, before the body is read. Keep-alive, pipelining,
    flow control and graceful shutdown stay uvicorn's. Pass as
    `uvicorn.Config(http=functools.partial(InvokeProtocol, api=api, limits=...))`.
    """

    # Set at the end of a graceful shutdown, when the invocations still running are ended:
    # their callers get a 5xx, not the error of a function that died.
    ending = False

    def __init__(self, *args: Any, api: LambdaApi, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = api
        loop = self.loop
        self.writes = _writes.get(loop) or _writes.setdefault(loop, _Writes(loop))

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's, noting what the guard reads on the way. Measured with timeit for boto3's
        # 8 headers: 60-250 ns a request more than uvicorn's, where a second look over the
        # headers costs 430 ns; the guard's check is then one lookup (70 ns).
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace; RFC 9110 does not
        if name == b"host":
            self.host = value
            self.hosts += 1
        elif name == b"origin":
            self.origin = value
        elif name == b"sec-fetch-site":
            self.fetch_site = value
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._end_head()
        parser = self.parser
        if parser.get_method() == b"POST" and not parser.should_upgrade():
            url = httptools.parse_url(self.url)
            m = INVOKE_PATH.match(url.path)
            if m is not None:
                self._begin(m.group(1).decode("latin-1"), url.path, url.query or b"")
                self.headers = []  # trailers: not the request's
                return
        self._start_cycle()
        self.headers = []

    def _begin(self, name: str, path: bytes, query: bytes) -> None:
        parser = self.parser
        headers = self.headers
        http_10 = parser.get_http_version() == "1.0"
        invoke = _Invoke(
            name,
            path,
            query,
            headers,
            invoke_limit(headers),
            not http_10 and parser.should_keep_alive(),
            self.expect_100_continue,
        )
        api = self.api
        verdict = api.guard.check(self.host, self.hosts, self.origin, self.fetch_site, http_10)
        if verdict is not None:
            if isinstance(verdict, Refusal):
                error = ApiError(verdict.status, verdict.code, verdict.message)
                invoke.refuse(error.response(new_request_id()))
            else:
                invoke.cors = verdict
        if api.verifier is not None and invoke.answer is None:
            try:
                api._authorize("POST", path, query, text_headers(headers), None)
            except ApiError as e:
                invoke.refuse(e.response(new_request_id()))
        before = self.cycle
        self.cycle = invoke  # type: ignore[assignment]
        if invoke.answer is not None:
            self.flow.pause_reading()  # answered from its headers: its body is not read
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
        if invoke.complete or invoke.answer is not None:
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
        self._end_request()
        invoke.complete = True
        if invoke.turn and invoke.answer is None:
            self._answer(invoke)

    def _answer(self, invoke: _Invoke) -> None:
        task = self.loop.create_task(self._respond(invoke))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _respond(self, invoke: _Invoke) -> None:
        try:
            if invoke.answer is not None:
                status, body, headers = invoke.answer
            else:
                status, body, headers = await self.api.answer_invoke(
                    invoke.name, invoke.path, invoke.query, invoke.headers, invoke.body()
                )
                if self.ending:
                    status, body, headers = _ended(status, body, headers)
        except asyncio.CancelledError:  # shutdown's last deadline (a client hanging up does not)
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
            if invoke.cors is not None:
                for name, value in invoke.cors:
                    head += (name, b": ", value, b"\r\n")
            head += (b"content-length: ", str(len(body)).encode(), b"\r\n")
            if not invoke.keep_alive:
                head.append(b"connection: close\r\n")
            head += (b"\r\n", body)
            self.writes.add(transport, b"".join(head), not invoke.keep_alive)
        self.on_response_complete()

    def _flush(self) -> None:
        self.writes.flush()


def _ended(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> Response:
    """The answer to an invocation ended at shutdown: Lambda's 5xx, not the function's error."""
    names = dict(headers)
    if b"x-amz-function-error" not in names:
        return status, body, headers  # it finished before it could be ended
    error = ApiError(
        500,
        "ServiceException",
        "warmstart serve stopped: the invocation was still running when the graceful "
        "shutdown time (--graceful-timeout) was up, and was ended",
    )
    return error.response(names.get(b"x-amzn-requestid", b"").decode("latin-1"))
