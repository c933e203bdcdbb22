"""uvicorn's httptools protocol, sending each response in one write.

uvicorn writes a response's head and its body with two `send` calls. Each one wakes the client,
which reads half a response and goes back to sleep: on a VM the wake-up is most of the cost of a
small response. Here the request's writes are held until the response is complete (or the event
loop comes round, for streamed bodies and `100 Continue`) and then sent together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingProtocol"]


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
