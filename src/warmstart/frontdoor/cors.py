"""API Gateway's CORS, one object per API: what SAM's `Cors` and `CorsConfiguration` make of it.

REST APIs (`Cors` on an AWS::Serverless::Api or Globals.Api): SAM adds an OPTIONS method to each
path of the API (unless it has one), a mock integration that answers 200 with the configured
headers whoever asks; the API's other responses are the function's own (with Lambda proxy
integration, the function returns its CORS headers).

HTTP APIs (`CorsConfiguration`): API Gateway answers preflight requests itself (those no route
takes: an OPTIONS, ANY or $default route does) and, to a request whose Origin is allowed, adds its
CORS headers to every response, in place of any the function returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import TemplateError
from ..sam.values import describe, expect_list, expect_map, is_scalar, text_of

__all__ = ["HttpCors", "RestCors", "http_cors", "rest_cors"]

Headers = list[tuple[bytes, bytes]]
ALL_METHODS = "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"  # SAM's Allow-Methods for an ANY method
REST_KEYS = ("AllowMethods", "AllowHeaders", "AllowOrigin", "MaxAge", "AllowCredentials")
HTTP_KEYS = (
    "AllowMethods",
    "AllowHeaders",
    "AllowOrigins",
    "ExposeHeaders",
    "MaxAge",
    "AllowCredentials",
)
_QUOTED = re.compile(r"'([ -&(-~]*)'")  # printable ASCII, as a header value must be
_TOKEN = re.compile(r"[!-~]+")  # an origin, a header or method name: printable, no spaces


@dataclass(frozen=True)
class RestCors:
    """The headers of the OPTIONS method SAM adds to each path of a REST API.

    Example: rest_cors("'*'", "Resources.Api.Properties.Cors").preflight({"GET"})
    """

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None
    max_age: str | None = None
    allow_credentials: bool = False

    def preflight(self, methods: set[str]) -> Headers:
        """The mock's headers for a path with these methods (ANY: all of them)."""
        if self.allow_methods is not None:
            allowed = self.allow_methods
        elif "ANY" in methods:
            allowed = ALL_METHODS
        else:
            allowed = ",".join(sorted(methods | {"OPTIONS"}))
        out = [
            (b"access-control-allow-origin", self.allow_origin.encode("latin-1")),
            (b"access-control-allow-methods", allowed.encode("latin-1")),
        ]
        if self.allow_headers:
            out.append((b"access-control-allow-headers", self.allow_headers.encode("latin-1")))
        if self.max_age is not None:
            out.append((b"access-control-max-age", self.max_age.encode()))
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out


@dataclass(frozen=True)
class HttpCors:
    """An HTTP API's CorsConfiguration. Example: http_cors(True, "X").allowed("http://a") -> "*"."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allowed(self, origin: str | None) -> str | None:
        """Access-Control-Allow-Origin for a request from `origin`; None: not allowed."""
        if not origin:
            return None
        for allowed in self.allow_origins:
            if allowed == "*":
                return origin if self.allow_credentials else "*"
            if allowed == origin.lower() or (
                allowed.endswith("://*") and origin.lower().startswith(allowed[:-1])
            ):
                return origin
        return None

    def preflight(self, origin: str | None) -> Headers:
        """The headers of API Gateway's answer to a preflight (none for an origin not allowed)."""
        value = self.allowed(origin)
        if value is None:
            return []
        out = [(b"access-control-allow-origin", value.encode("latin-1"))]
        if self.allow_methods:
            out.append((b"access-control-allow-methods", ",".join(self.allow_methods).encode()))
        if self.allow_headers:
            out.append((b"access-control-allow-headers", ",".join(self.allow_headers).encode()))
        if self.max_age is not None:
            out.append((b"access-control-max-age", str(self.max_age).encode()))
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def apply(self, origin: str | None, headers: Headers) -> Headers:
        """A response's headers: the function's CORS headers dropped (API Gateway ignores them),
        the API's added for an origin it allows."""
        out = [(k, v) for k, v in headers if not k.startswith(b"access-control-")]
        value = self.allowed(origin)
        if value is None:
            return out
        out.append((b"access-control-allow-origin", value.encode("latin-1")))
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.expose_headers:
            out.append((b"access-control-expose-headers", ",".join(self.expose_headers).encode()))
        return out


def _quoted(value: Any, where: str) -> str:
    """A REST API header value: API Gateway takes a static value in single quotes ("'*'")."""
    text = text_of(value) if is_scalar(value) else None
    m = _QUOTED.fullmatch(text) if text is not None else None
    if m is None:
        raise TemplateError(
            f"must be a value in single quotes, as API Gateway takes it: \"'*'\" or "
            f"\"'https://example.com'\" (got {describe(value)})",
            where,
        )
    return m.group(1)


def rest_cors(value: Any, where: str) -> RestCors | None:
    """A REST API's `Cors` (a quoted origin, or a map), checked as SAM checks it.

    Example: rest_cors({"AllowOrigin": "'*'", "MaxAge": 600}, "Globals.Api.Cors")
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        return RestCors(_quoted(value, where))
    for key in value:
        if key not in REST_KEYS:
            raise TemplateError(
                f"{key!r} is not a property of Cors ({', '.join(REST_KEYS)})", where
            )
    origin = _quoted(value.get("AllowOrigin", "'*'"), f"{where}.AllowOrigin")
    credentials = value.get("AllowCredentials", False)
    if not isinstance(credentials, bool):
        raise TemplateError(
            f"must be true or false (got {describe(credentials)})", f"{where}.AllowCredentials"
        )
    if credentials and origin == "*":
        raise TemplateError(
            "AllowCredentials cannot be true when AllowOrigin is \"'*'\" or not set (SAM refuses "
            "it; browsers would too)",
            where,
        )
    max_age = value.get("MaxAge")
    if max_age is not None:
        text = text_of(max_age) if is_scalar(max_age) else ""
        m = _QUOTED.fullmatch(text)
        max_age = m.group(1) if m else text
        if not max_age.isdigit():
            raise TemplateError(
                f"must be a number of seconds (got {describe(value['MaxAge'])})", f"{where}.MaxAge"
            )
    return RestCors(
        origin,
        _quoted(value["AllowHeaders"], f"{where}.AllowHeaders")
        if value.get("AllowHeaders") is not None
        else None,
        _quoted(value["AllowMethods"], f"{where}.AllowMethods")
        if value.get("AllowMethods") is not None
        else None,
        max_age,
        credentials,
    )


def _texts(value: Any, where: str) -> tuple[str, ...]:
    items = expect_list(value, where, "a list of texts") if value is not None else []
    for i, item in enumerate(items):
        if not is_scalar(item) or not _TOKEN.fullmatch(text_of(item)):
            raise TemplateError(
                f"must be an origin, a header or a method name (got {describe(item)})",
                f"{where}[{i}]",
            )
    return tuple(text_of(item) for item in items)


def http_cors(value: Any, where: str) -> HttpCors | None:
    """An HTTP API's `CorsConfiguration` (true: any origin, as SAM makes it; or a map).

    Example: http_cors({"AllowOrigins": ["http://localhost:5173"]}, "Resources.H.Properties.X")
    """
    if value is None or value is False:
        return None
    if value is True:
        return HttpCors(("*",))
    config = expect_map(value, where, "true or a map (AllowOrigins, AllowMethods, ...)")
    for key in config:
        if key not in HTTP_KEYS:
            raise TemplateError(
                f"{key!r} is not a property of CorsConfiguration ({', '.join(HTTP_KEYS)})", where
            )
    origins = tuple(o.lower() for o in _texts(config.get("AllowOrigins"), f"{where}.AllowOrigins"))
    credentials = config.get("AllowCredentials", False)
    if not isinstance(credentials, bool):
        raise TemplateError(
            f"must be true or false (got {describe(credentials)})", f"{where}.AllowCredentials"
        )
    if credentials and "*" in origins:
        raise TemplateError(
            "AllowCredentials cannot be true when AllowOrigins has '*' (API Gateway refuses it)",
            where,
        )
    max_age = config.get("MaxAge")
    if max_age is not None:
        text = text_of(max_age) if is_scalar(max_age) else ""
        if not text.lstrip("-").isdigit() or not -1 <= int(text) <= 86400:
            raise TemplateError(
                f"must be a number of seconds from -1 to 86400 (got {describe(max_age)})",
                f"{where}.MaxAge",
            )
        max_age = int(text)
    return HttpCors(
        origins,
        tuple(h.lower() for h in _texts(config.get("AllowHeaders"), f"{where}.AllowHeaders")),
        tuple(m.upper() for m in _texts(config.get("AllowMethods"), f"{where}.AllowMethods")),
        tuple(h.lower() for h in _texts(config.get("ExposeHeaders"), f"{where}.ExposeHeaders")),
        max_age,
        credentials,
    )
