"""API Gateway in front of the template's functions: REST APIs (payload 1.0) and HTTP APIs (2.0).

Routes come from the functions' `Api` and `HttpApi` events; an HTTP request becomes the proxy
event API Gateway would send, and the handler's result becomes the HTTP response it would send
back (or 502 when the result is not one it can use).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ..api import Runtime
from ..engine.service import new_request_id
from ..errors import TooManyRequestsError
from ..spec import FunctionSpec
from .access import Access, Apis
from .asgi import CLOSE, BodyTooLarge, Disconnected, Receive, Scope, Send, read_body, send
from .authorizers import AuthRequest, Refusal
from .guard import Guard, noted
from .jwt_auth import KeySet

__all__ = ["ApiGateway", "Route", "routes"]

log = logging.getLogger("warmstart")

PAYLOAD_LIMIT = 10 * 1024 * 1024  # API Gateway's request size limit
JSON = (b"content-type", b"application/json")
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]*\+(json|xml)))"
)


@dataclass
class Route:
    """One API route: method (or ANY) and path template, to a function."""

    method: str
    path: str  # "/items/{id}", "/{proxy+}", or "$default"
    function: str
    payload_version: str  # "1.0" (REST API) or "2.0" (HTTP API)
    api_id: str
    stage: str
    # What it invokes: with AutoPublishAlias, SAM points the function's event sources at the
    # alias (so its provisioned environments take the traffic), else $LATEST.
    qualifier: str | None = None
    # Its authorizer and CORS (None for most routes: then nothing is done but the invocation).
    access: Access | None = None
    kind: str = ""  # "Api" (REST) or "HttpApi"; by default, from the payload version
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.kind = self.kind or ("HttpApi" if self.payload_version == "2.0" else "Api")
        if self.path == "$default":
            self.regex = re.compile(r"^(?P<__default>.*)$")
            return
        pattern = ""
        for part in self.path.strip("/").split("/"):
            if not part:
                continue
            m = re.fullmatch(r"\{(\w+)\+\}", part)
            if m:
                pattern += rf"/(?P<{m.group(1)}>.+)"
            elif re.fullmatch(r"\{(\w+)\}", part):
                pattern += rf"/(?P<{part[1:-1]}>[^/]+)"
            else:
                pattern += "/" + re.escape(part)
        self.regex = re.compile(f"^{pattern or '/'}/?$")

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key: literal segments first, then parameters, greedy paths and $default last."""
        parts = [p for p in self.path.strip("/").split("/") if p]
        literal = sum(1 for p in parts if not p.startswith("{"))
        greedy = any(p.endswith("+}") for p in parts) or self.path == "$default"
        return (int(greedy), -literal, -len(parts), int(self.method == "ANY"))


def routes(
    specs: list[FunctionSpec],
    resources: dict[str, Any],
    api_globals: dict[str, dict[str, Any]] | None = None,
    keys: KeySet | None = None,
) -> list[Route]:
    """The API routes of the functions' Api and HttpApi events, most specific first, with their
    APIs' CORS and authorizers (see access.py; `keys`: those `serve --jwks` gives).

    Routes API Gateway would refuse are served anyway, each with a warning saying how: a path
    without its leading `/`, a greedy `{proxy+}` before the last segment, and a route that
    another already has (the first one in the template answers). A REST API with Cors gets an
    OPTIONS route on each of its paths that has none, as SAM adds (those have no function).
    """
    out = []
    events: dict[int, str] = {}  # id(route) -> "Function (Events.Name)", for warnings
    apis = Apis(resources, api_globals, specs, keys)
    for spec in specs:
        for event_name, event in spec.events.items():
            kind = event.get("Type")
            props = event.get("Properties") or {}
            if kind not in ("Api", "HttpApi"):
                continue
            api_ref = props.get("RestApiId" if kind == "Api" else "ApiId")
            api = resources.get(api_ref, {}) if isinstance(api_ref, str) else {}
            stage = (api.get("Properties") or {}).get("StageName")
            if kind == "Api":
                version, stage = "1.0", stage or "Prod"
            else:
                version = str(
                    props.get("PayloadFormatVersion")
                    or (api.get("Properties") or {}).get("PayloadFormatVersion")
                    or "2.0"
                )
                stage = stage or "$default"
            path = props.get("Path") or "$default"
            method = str(props.get("Method") or "ANY").upper()
            route = Route(
                method,
                path,
                spec.name,
                version,
                api_ref
                if isinstance(api_ref, str)
                else ("ServerlessRestApi" if kind == "Api" else "ServerlessHttpApi"),
                stage,
                spec.auto_publish_alias,
                kind=kind,
            )
            where = f"Resources.{spec.logical_id or spec.name}.Properties.Events.{event_name}"
            route.access = apis.access(
                kind, route.api_id, props.get("Auth"), f"{where}.Properties.Auth"
            )
            events[id(route)] = f"{spec.name} (Events.{event_name})"
            out.append(route)
    _warn_about(out, events)
    return sorted(out + _preflights(out, apis), key=Route.specificity)


def _preflights(table: list[Route], apis: Apis) -> list[Route]:
    """The OPTIONS routes SAM adds to each path of a REST API with Cors (unless it has one)."""
    paths: dict[tuple[str, str], list[Route]] = {}
    for route in table:
        if route.kind == "Api":
            paths.setdefault((route.api_id, route.path.rstrip("/") or "/"), []).append(route)
    out = []
    for (api_id, _), same in paths.items():
        methods = {r.method for r in same}
        access = apis.preflight(api_id, methods) if "OPTIONS" not in methods else None
        if access is not None:
            out.append(
                Route("OPTIONS", same[0].path, "", "1.0", api_id, same[0].stage, access=access)
            )
    return out


def _warn_about(table: list[Route], events: dict[int, str]) -> None:
    """One warning line for each route API Gateway would not accept as it is written."""
    first: dict[tuple[str, str, str], Route] = {}
    for route in table:
        where = f"route {route.method} {route.path} of {events[id(route)]}"
        if route.path == "$default":
            continue
        if not route.path.startswith("/"):
            log.warning("%s: the path does not start with '/'; served as /%s", where,
                        route.path.strip("/"))  # fmt: skip
        segments = [p for p in route.path.strip("/").split("/") if p]
        if any(p.endswith("+}") for p in segments[:-1]):
            log.warning(
                "%s: a greedy {name+} parameter must be the last segment (API Gateway refuses "
                "this path); served as written, the greedy part matching one or more segments",
                where,
            )
        # Parameter names do not make routes different: /a/{id} and /a/{name} are one route.
        shape = "/" + "/".join(re.sub(r"^\{\w+(\+?)\}$", r"{\1}", p) for p in segments)
        key = (route.api_id, route.method, shape)
        if key in first:
            log.warning("%s: the same route as %s; that one is used", where, events[id(first[key])])
        else:
            first[key] = route


def _is_text(content_type: str) -> bool:
    return not content_type or bool(TEXT_TYPES.match(content_type.lower()))


def _body(raw: bytes, content_type: str) -> tuple[str | None, bool]:
    """(body, isBase64Encoded) as API Gateway passes a request body."""
    if not raw:
        return None, False
    if _is_text(content_type):
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode(), True


def _clf_time(epoch: float) -> str:
    """requestTime as API Gateway writes it: 09/Apr/2015:12:34:56 +0000."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


class ApiGateway:
    """The ASGI application of `warmstart serve --api-port`.

    Example: uvicorn.run(ApiGateway(rt, routes(...)), port=3000)
    """

    def __init__(self, runtime: Runtime, table: list[Route], guard: Guard | None = None) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.routes = table
        self.account = runtime.config.account_id
        self.region = runtime.config.region
        self.guard = guard or Guard()
        # Routes of HTTP APIs with CORS: API Gateway answers the preflights no route takes.
        self.cors_routes = [
            (r.regex, r.access.cors)
            for r in table
            if r.access is not None and r.access.cors is not None
        ]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if route.method not in ("ANY", method):
                continue
            m = route.regex.match(path)
            if m:
                params = {k: v for k, v in m.groupdict().items() if k != "__default"}
                return route, params
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        if scope["type"] == "lifespan":
            from .lambda_api import _lifespan

            await _lifespan(receive, send_)
            return
        if scope["type"] != "http":
            return
        # API Gateway's CORS is the API's own (no Origin is refused here), but only names DNS
        # rebinding cannot point here are answered: a rebound page could read the answers.
        host, hosts, _, _ = noted(scope["headers"])
        refusal = self.guard.check_host(host, hosts, scope.get("http_version") == "1.0")
        if refusal is not None:
            status, body, headers = _message(refusal.status, refusal.message, new_request_id())
            await send(send_, status, body, [*headers, CLOSE])
            return
        try:
            status, body, headers = await self.handle(scope, receive)
        except Disconnected:
            return  # nobody to answer (the client left, or was timed out)
        await send(send_, status, body, headers)

    async def handle(self, scope: Scope, receive: Receive) -> Answer:
        request_id = new_request_id()
        route, params = self.match(scope["method"], scope["path"])
        if route is None:
            if scope["method"] == "OPTIONS" and self.cors_routes:
                answer = self.preflight(scope, request_id)
                if answer is not None:
                    return answer
            return _message(404, "Not Found", request_id)
        try:
            raw = await read_body(receive, PAYLOAD_LIMIT)
        except BodyTooLarge:
            return _message(413, "Request Entity Too Large", request_id)
        event = self.event(route, scope, params, raw, request_id)
        access = route.access  # None for most routes: the function is all there is
        if access is not None:
            early = await self.gatekeep(route, access, scope, params, raw, event, request_id)
            if early is not None:
                return early
        try:
            res = await self.service.ainvoke(route.function, event, route.qualifier)
        except TooManyRequestsError:
            out = _message(429, "Too Many Requests", request_id)
        except Exception:
            out = _message(500, "Internal Server Error", request_id)
        else:
            answer = None if res.function_error else response(route, res.payload, request_id)
            out = answer or _message(502, "Internal server error", request_id)
        if access is not None and access.cors is not None:
            out = out[0], out[1], access.cors.apply(_header(scope, b"origin"), out[2])
        return out

    async def gatekeep(
        self,
        route: Route,
        access: Access,
        scope: Scope,
        params: dict[str, str],
        raw: bytes,
        event: dict[str, Any],
        request_id: str,
    ) -> Answer | None:
        """API Gateway's own answer before the function (a refusal, the REST CORS mock's), or
        None to invoke it, with what the authorizer passes on in the event."""
        answer = None
        if access.gate is not None:
            verdict = await access.gate.check(
                self._auth_request(route, scope, params, raw, event, request_id)
            )
            if isinstance(verdict, Refusal):
                answer = _refused(verdict, request_id)
            elif verdict is not None:
                event["requestContext"]["authorizer"] = verdict
        if answer is None and access.preflight is not None:
            answer = 200, b"{}", [JSON, *access.preflight, *_ids(request_id)]
        if answer is not None and access.cors is not None:
            answer = answer[0], answer[1], access.cors.apply(_header(scope, b"origin"), answer[2])
        return answer

    def preflight(self, scope: Scope, request_id: str) -> Answer | None:
        """An HTTP API's own answer to a preflight that no route takes (None: not one)."""
        origin = _header(scope, b"origin")
        if origin is None or _header(scope, b"access-control-request-method") is None:
            return None
        for regex, cors in self.cors_routes:
            if regex.match(scope["path"]):
                return 204, b"", [*cors.preflight(origin), *_ids(request_id)]
        return None

    def _auth_request(
        self,
        route: Route,
        scope: Scope,
        params: dict[str, str],
        raw: bytes,
        event: dict[str, Any],
        request_id: str,
    ) -> AuthRequest:
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        arn = (
            f"arn:aws:execute-api:{self.region}:{self.account}:{route.api_id}/{route.stage}/"
            f"{scope['method']}/{scope['path'].lstrip('/')}"
        )

        def event_for(version: str) -> dict[str, Any]:
            if version == route.payload_version:
                return event
            return self.event(route, scope, params, raw, request_id, version)

        return AuthRequest(
            headers, query, arn, route.payload_version, event, event_for, self.service.ainvoke
        )

    def event(
        self,
        route: Route,
        scope: Scope,
        params: dict[str, str],
        raw: bytes,
        request_id: str,
        version: str | None = None,
    ) -> dict[str, Any]:
        """The proxy event API Gateway sends for this request (in the route's payload format,
        unless `version` asks for another: an HTTP API's authorizer may take the other one)."""
        now = time.time()
        method = scope["method"]
        path = scope["path"]
        query = scope["query_string"].decode("latin-1")
        headers: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1"), []).append(v.decode("latin-1"))
        content_type = (headers.get("content-type") or [""])[0]
        body, is_b64 = _body(raw, content_type)
        source_ip = (scope.get("client") or ("127.0.0.1", 0))[0]
        user_agent = (headers.get("user-agent") or [""])[0]
        host = (headers.get("host") or ["localhost"])[0]
        pairs = parse_qsl(query, keep_blank_values=True)
        if (version or route.payload_version) == "1.0":
            multi_query: dict[str, list[str]] = {}
            for k, v in pairs:
                multi_query.setdefault(k, []).append(v)
            return {
                "resource": route.path,
                "path": path,
                "httpMethod": method,
                "headers": {k: v[-1] for k, v in headers.items()},
                "multiValueHeaders": headers,
                "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
                "multiValueQueryStringParameters": multi_query or None,
                "pathParameters": params or None,
                "stageVariables": None,
                "requestContext": {
                    "accountId": self.account,
                    "apiId": route.api_id,
                    "domainName": host,
                    "domainPrefix": host.split(".")[0],
                    "extendedRequestId": request_id,
                    "httpMethod": method,
                    "identity": {
                        "sourceIp": source_ip,
                        "userAgent": user_agent,
                        "accessKey": None,
                        "accountId": None,
                        "caller": None,
                        "user": None,
                        "userArn": None,
                    },
                    "path": f"/{route.stage}{path}",
                    "protocol": scope.get("scheme", "http").upper()
                    + "/"
                    + scope.get("http_version", "1.1"),
                    "requestId": request_id,
                    "requestTime": _clf_time(now),
                    "requestTimeEpoch": int(now * 1000),
                    "resourceId": route.path,
                    "resourcePath": route.path,
                    "stage": route.stage,
                },
                "body": body,
                "isBase64Encoded": is_b64,
            }
        cookies = [c.strip() for v in headers.pop("cookie", []) for c in v.split(";") if c.strip()]
        joined_query: dict[str, str] = {}
        for k, v in pairs:
            joined_query[k] = f"{joined_query[k]},{v}" if k in joined_query else v
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k: ",".join(v) for k, v in headers.items()},
            "requestContext": {
                "accountId": self.account,
                "apiId": route.api_id,
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/" + scope.get("http_version", "1.1"),
                    "sourceIp": source_ip,
                    "userAgent": user_agent,
                },
                "requestId": request_id,
                "routeKey": route.route_key,
                "stage": route.stage,
                "time": _clf_time(now),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": is_b64,
        }
        if cookies:
            event["cookies"] = cookies
        if joined_query:
            event["queryStringParameters"] = joined_query
        if params:
            event["pathParameters"] = params
        if body is not None:
            event["body"] = body
        return event


def _ids(request_id: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-amzn-requestid", request_id.encode()), (b"apigw-requestid", request_id.encode())]


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


def _message(status: int, message: str, request_id: str) -> Answer:
    return status, json.dumps({"message": message}).encode(), [JSON, *_ids(request_id)]


def _refused(refusal: Refusal, request_id: str) -> Answer:
    """API Gateway's answer in place of the function's (a gateway response)."""
    headers = [JSON, *_ids(request_id), *refusal.headers]
    if refusal.error_type:
        headers.append((b"x-amzn-errortype", refusal.error_type.encode()))
    return refusal.status, json.dumps(refusal.body, separators=(",", ":")).encode(), headers


def response(route: Route, result: Any, request_id: str) -> Answer | None:
    """The HTTP response API Gateway makes of a handler's result; None if it cannot (502)."""
    base = _ids(request_id)
    if route.payload_version == "2.0" and not (isinstance(result, dict) and "statusCode" in result):
        # HTTP APIs infer a response from anything that is not one: 200, the result as JSON.
        text = result if isinstance(result, str) else json.dumps(result)
        return 200, text.encode(), [JSON, *base]
    if not isinstance(result, dict):
        return None
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    body = result.get("body")
    if (
        not isinstance(headers, dict)
        or not isinstance(multi, dict)
        or not (body is None or isinstance(body, str))
    ):
        return None
    out: list[tuple[bytes, bytes]] = []
    for k, v in headers.items():
        out.append((str(k).lower().encode("latin-1"), str(v).encode("latin-1")))
    for k, values in multi.items():
        if not isinstance(values, list):
            return None
        out += [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for v in values]
    if route.payload_version == "2.0":
        cookies = result.get("cookies") or []
        if not isinstance(cookies, list):
            return None
        out += [(b"set-cookie", str(c).encode("latin-1")) for c in cookies]
    if not any(k == b"content-type" for k, _ in out):
        out.append(JSON)
    data = (body or "").encode()
    if result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body or "", validate=True)
        except ValueError:
            return None
    return status, data, [*out, *base]
