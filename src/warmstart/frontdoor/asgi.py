"""The little an ASGI application needs: read a body, send a response, route by regex.

The front doors are raw ASGI applications on uvicorn: a framework's request and response objects
and middleware stack cost as much per request as the whole invocation does (Starlette halves the
requests per second of a bare ASGI app on this machine), and the Lambda API has a fixed set of
routes that a table of regular expressions serves.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "CLOSE",
    "BodyTooLarge",
    "Disconnected",
    "Request",
    "Router",
    "has_body",
    "read_body",
    "send",
    "text_headers",
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
CLOSE = (b"connection", b"close")  # answered before the body was read: do not read the rest


def has_body(headers: Headers) -> bool:
    """Whether a request's headers announce a body."""
    for k, v in headers:
        if (k == b"content-length" and v.strip() not in (b"", b"0")) or k == b"transfer-encoding":
            return True
    return False


def text_headers(headers: Headers) -> dict[str, str]:
    """Headers as text, by (lower-case) name; of a repeated header, the last."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}


class BodyTooLarge(Exception):
    """The request body is over the limit given to read_body."""


class Disconnected(Exception):
    """The client went away (or was timed out) before its whole request came."""


async def _next(receive: Receive) -> dict[str, Any]:
    message = await receive()
    if message["type"] == "http.disconnect":  # not an empty body: a request cut short
        raise Disconnected
    return message


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; raises BodyTooLarge past `limit` bytes (without reading it all),
    Disconnected if the client goes before it is whole."""
    message = await _next(receive)
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise BodyTooLarge
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await _next(receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


async def send(
    send_: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One whole response."""
    await send_({"type": "http.response.start", "status": status, "headers": headers or []})
    await send_({"type": "http.response.body", "body": body})


class Request:
    """What a handler needs of an HTTP request: method, path parameters, query, headers, body."""

    __slots__ = ("body", "headers", "method", "params", "path", "query", "scope")

    def __init__(self, scope: Scope, params: dict[str, str], body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.params = params
        self.body = body
        self.query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }


Handler = Callable[[Request], Awaitable[tuple[int, bytes, list[tuple[bytes, bytes]]]]]


class Router:
    """Routes of (method, path pattern with {name} parameters, handler)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/"))
        self.routes.append((method, re.compile(f"^{regex}/?$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path parameters, whether the path exists for another method)."""
        other_method = False
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                if m == method:
                    return handler, found.groupdict(), True
                other_method = True
        return None, {}, other_method
