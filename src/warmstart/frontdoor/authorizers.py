"""API Gateway's authorizers, run before a route's function as API Gateway runs them.

A route's `Gate` holds its authorizer (a Lambda authorizer here, a JWT or Cognito one in
jwt_auth.py, AWS_IAM) and whether it needs an API key. `Gate.check` answers either a `Refusal`
(the status and body API Gateway sends: 401 when the identity is missing or refused, 403 when a
policy denies, 500 when the authorizer fails) or what the function's event gets as
`requestContext.authorizer`.

Lambda authorizers (REST TOKEN and REQUEST, HTTP API payload 1.0 and 2.0 with or without simple
responses) are invoked on the engine like any function, and their results are cached by identity
for ReauthorizeEvery seconds; a cached policy is evaluated again against each request's ARN, as
API Gateway does (a policy that names one resource denies the others).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AuthRequest",
    "Authorizer",
    "Gate",
    "IamAuthorizer",
    "LambdaAuthorizer",
    "Refusal",
    "Source",
    "evaluate_policy",
    "identity_value",
]

log = logging.getLogger("warmstart")

CACHE_ENTRIES = 10_000  # per authorizer: clients cannot grow it without bound


@dataclass(frozen=True)
class Refusal:
    """API Gateway's answer in place of the function's: status, JSON body, x-amzn-ErrorType."""

    status: int
    body: dict[str, Any]
    error_type: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()


# REST APIs' gateway responses (with their x-amzn-ErrorType) and HTTP APIs' answers.
REST_UNAUTHORIZED = Refusal(401, {"message": "Unauthorized"}, "UnauthorizedException")
REST_EXPLICIT_DENY = Refusal(
    403,
    {"Message": "User is not authorized to access this resource with an explicit deny"},
    "AccessDeniedException",
)
REST_NOT_ALLOWED = Refusal(
    403, {"Message": "User is not authorized to access this resource"}, "AccessDeniedException"
)
REST_AUTHORIZER_ERROR = Refusal(500, {"message": None}, "AuthorizerConfigurationException")
REST_NO_API_KEY = Refusal(403, {"message": "Forbidden"}, "ForbiddenException")
REST_NO_SIGNATURE = Refusal(
    403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException"
)
HTTP_UNAUTHORIZED = Refusal(401, {"message": "Unauthorized"})
HTTP_FORBIDDEN = Refusal(403, {"message": "Forbidden"})
HTTP_AUTHORIZER_ERROR = Refusal(500, {"message": "Internal Server Error"})

Source = tuple[str, str]  # ("header", "authorization"), ("query", "token"), ("context", ...)


@dataclass
class AuthRequest:
    """What an authorizer sees of one request."""

    headers: dict[str, str]  # lower-case names; a repeated header's values joined by commas
    query: dict[str, str]  # a repeated parameter: its last value
    arn: str  # the methodArn (REST) or routeArn (HTTP API) a policy is evaluated against
    version: str  # the payload format of the route's integration ("1.0" or "2.0")
    event: dict[str, Any]  # the integration's proxy event
    event_for: Callable[[str], dict[str, Any]]  # the request as a proxy event of a version
    invoke: Callable[[str, Any, str | None], Awaitable[Any]]  # Service.ainvoke


def identity_value(request: AuthRequest, source: Source) -> str | None:
    """The value of one identity source in a request; None (or "") when it has none."""
    kind, name = source
    if kind == "header":
        return request.headers.get(name)
    if kind == "query":
        return request.query.get(name)
    if kind == "context":
        value: Any = request.event.get("requestContext")
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return None if value is None or isinstance(value, (dict, list)) else str(value)
    return None  # stage variables: warmstart's stages have none (said at start)


class Authorizer(Protocol):
    async def authorize(
        self, request: AuthRequest, scopes: tuple[str, ...]
    ) -> Refusal | dict[str, Any] | None: ...


@dataclass(frozen=True)
class Gate:
    """What a route asks of a request before its function runs.

    Example: await Gate(IamAuthorizer(rest=True)).check(request)  # REST_NO_SIGNATURE, unsigned
    """

    authorizer: Authorizer | None
    scopes: tuple[str, ...] = ()
    api_key: bool = False  # REST ApiKeyRequired: any x-api-key (usage plans are not kept here)

    async def check(self, request: AuthRequest) -> Refusal | dict[str, Any] | None:
        verdict = None
        if self.authorizer is not None:
            verdict = await self.authorizer.authorize(request, self.scopes)
            if isinstance(verdict, Refusal):
                return verdict
        if self.api_key and not request.headers.get("x-api-key"):
            return REST_NO_API_KEY
        return verdict


@dataclass(frozen=True)
class IamAuthorizer:
    """AWS_IAM: a request must be signed (SigV4); the signature is not checked against IAM."""

    rest: bool
    name: str = "AWS_IAM"

    async def authorize(self, request: AuthRequest, scopes: tuple[str, ...]) -> Refusal | None:
        signed = request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ") or (
            "X-Amz-Signature" in request.query
        )
        if signed:
            return None
        return REST_NO_SIGNATURE if self.rest else HTTP_FORBIDDEN


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(".".join(map(re.escape, p.split("?"))) for p in pattern.split("*")))


def _items(value: Any) -> list[str] | None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return None
    return items


def _matches(statement: dict[str, Any], key: str, text: str, fold: bool) -> bool | None:
    """Whether Action/Resource (or NotAction/NotResource) covers `text`; None if malformed."""
    positive = key in statement
    items = _items(statement[key] if positive else statement.get(f"Not{key}"))
    if items is None:
        return None
    subject = text.lower() if fold else text
    hit = any(_glob(i.lower() if fold else i).fullmatch(subject) for i in items)
    return hit if positive else not hit


def evaluate_policy(document: Any, arn: str) -> str | None:
    """What a policy document says of execute-api:Invoke on `arn`, as IAM evaluates it: "allow",
    "deny" (an explicit Deny) or "implicit" (nothing allows); None if it is not a policy.

    A statement with a Condition cannot be evaluated here: an Allow with one allows nothing, a
    Deny with one denies (warmstart errs on the side of refusing).

    Example: evaluate_policy({"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
             "Resource": "arn:aws:execute-api:*"}]}, arn) -> "allow"
    """
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return None
    allowed = False
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            return None
        action = _matches(st, "Action", "execute-api:Invoke", fold=True)
        resource = _matches(st, "Resource", arn, fold=False)
        if action is None or resource is None:
            return None
        if not (action and resource):
            continue
        if "Condition" in st:
            _warn_once(
                "an authorizer's policy has a Condition, which is not evaluated locally: its "
                "Allow statements allow nothing, its Deny statements deny"
            )
            if st["Effect"] == "Allow":
                continue
        if st["Effect"] == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit"


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


@dataclass
class LambdaAuthorizer:
    """A Lambda authorizer of a REST API (TOKEN or REQUEST) or an HTTP API (REQUEST).

    `function`: the template function it runs (None: its FunctionArn names none, and every
    request it guards is answered 500, as API Gateway answers when it cannot invoke one).
    """

    name: str
    function: str | None
    qualifier: str | None = None
    rest: bool = True
    token: bool = False  # REST TOKEN: `sources` is the one header holding the token
    sources: tuple[Source, ...] = ()
    validation: re.Pattern[str] | None = None  # REST TOKEN: Identity.ValidationExpression
    ttl: int = 0  # seconds a result is cached (ReauthorizeEvery); 0: not cached
    payload: str = "1.0"  # HTTP APIs: AuthorizerPayloadFormatVersion
    simple: bool = False  # HTTP APIs, payload 2.0: EnableSimpleResponses
    cache: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict, repr=False)

    @property
    def _unauthorized(self) -> Refusal:
        return REST_UNAUTHORIZED if self.rest else HTTP_UNAUTHORIZED

    @property
    def _error(self) -> Refusal:
        return REST_AUTHORIZER_ERROR if self.rest else HTTP_AUTHORIZER_ERROR

    async def authorize(
        self, request: AuthRequest, scopes: tuple[str, ...]
    ) -> Refusal | dict[str, Any] | None:
        identity = tuple(identity_value(request, s) or "" for s in self.sources)
        if not all(identity) or (
            self.validation is not None and not self.validation.fullmatch(identity[0])
        ):
            return self._unauthorized
        now = time.monotonic()
        hit = self.cache.get(identity) if self.ttl and identity else None
        latency = 0
        if hit is not None and hit[0] > now:
            result = hit[1]
        else:
            if self.function is None:
                return self._error
            started = time.monotonic()
            event = self._event(request, identity)
            try:
                res = await request.invoke(self.function, event, self.qualifier)
            except Exception:  # throttled, deleted...: API Gateway could not invoke it
                return self._error
            latency = round((time.monotonic() - started) * 1000)
            if res.function_error:
                payload = res.payload if isinstance(res.payload, dict) else {}
                unauthorized = payload.get("errorMessage") == "Unauthorized"
                return self._unauthorized if unauthorized else self._error
            result = res.payload
            if self.ttl and identity:
                self._remember(identity, now + self.ttl, result)
        return self._verdict(request, result, latency)

    def _remember(self, key: tuple[str, ...], expires: float, result: Any) -> None:
        if len(self.cache) >= CACHE_ENTRIES:
            now = time.monotonic()
            for k in [k for k, (t, _) in self.cache.items() if t <= now]:
                del self.cache[k]
            while len(self.cache) >= CACHE_ENTRIES:
                del self.cache[next(iter(self.cache))]
        self.cache[key] = (expires, result)

    def _event(self, request: AuthRequest, identity: tuple[str, ...]) -> dict[str, Any]:
        """The event API Gateway sends the authorizer: the request, without its body."""
        if self.rest and self.token:
            return {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": request.arn}
        base = request.event_for("2.0" if not self.rest and self.payload == "2.0" else "1.0")
        context = {k: v for k, v in base["requestContext"].items() if k != "authorizer"}
        fields = {
            k: v
            for k, v in base.items()
            if k not in ("version", "body", "isBase64Encoded", "requestContext")
        }
        if self.rest:
            head: dict[str, Any] = {"type": "REQUEST", "methodArn": request.arn}
        elif self.payload == "2.0":
            head = {"version": "2.0", "type": "REQUEST", "routeArn": request.arn}
            head["identitySource"] = list(identity)
        else:
            joined = ",".join(identity)
            head = {"version": "1.0", "type": "REQUEST", "methodArn": request.arn}
            head |= {"identitySource": joined, "authorizationToken": joined}
        return {**head, **fields, "requestContext": context}

    def _verdict(self, request: AuthRequest, result: Any, latency: int) -> Refusal | dict[str, Any]:
        """Allowed (what the function's event gets as requestContext.authorizer) or refused."""
        if not isinstance(result, dict):
            return self._error
        context = result.get("context")
        if context is None:
            context = {}
        if not isinstance(context, dict):
            return self._error
        if not self.rest and self.payload == "2.0" and self.simple:
            allowed = result.get("isAuthorized")
            if not isinstance(allowed, bool):
                return self._error
            if not allowed:
                return HTTP_FORBIDDEN
            return self._context(request, None, context, latency)
        principal = result.get("principalId")
        decision = evaluate_policy(result.get("policyDocument"), request.arn)
        if decision is None or (self.rest and not isinstance(principal, (str, int, float))):
            return self._error
        if decision != "allow":
            if not self.rest:
                return HTTP_FORBIDDEN
            return REST_EXPLICIT_DENY if decision == "deny" else REST_NOT_ALLOWED
        return self._context(request, principal, context, latency)

    def _context(
        self, request: AuthRequest, principal: Any, context: dict[str, Any], latency: int
    ) -> Refusal | dict[str, Any]:
        if not self.rest and request.version == "2.0":
            return {"lambda": context or None}
        if self.rest:
            # REST APIs pass context values as text, and refuse objects and arrays.
            texts = {}
            for k, v in context.items():
                if isinstance(v, (dict, list)):
                    return self._error
                if v is None:
                    continue
                texts[str(k)] = ("true" if v else "false") if isinstance(v, bool) else str(v)
            context = texts
        out: dict[str, Any] = {} if principal is None else {"principalId": principal}
        return {**out, **context, "integrationLatency": latency}
