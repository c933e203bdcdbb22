"""What API Gateway does around each route of a template's APIs: CORS and authorization.

Each API's `Cors` (`CorsConfiguration` for an HTTP API) and `Auth` are read as SAM reads them:
merged with Globals.Api (Globals.HttpApi), which alone configure the implicit ServerlessRestApi
(ServerlessHttpApi); then each event's own `Auth` picks the route's authorizer (or `NONE`) and
scopes. A mistake SAM would refuse is a TemplateError naming where it is.

What one machine cannot enforce is said at start, one line each, and never silently allowed:
AWS_IAM (signed requests are let in, unsigned ones refused), API keys (any key is let in, none
refused), resource policies, a token's signature without `--jwks`, a Cognito pool or app client
whose id only AWS knows, an authorizer whose function is not in the template (500).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from ..errors import TemplateError
from ..sam import merge_globals
from ..sam.arns import function_of_arn
from ..sam.values import Unresolved, describe, expect_int, expect_list, expect_map, text_of
from ..spec import FunctionSpec
from .authorizers import Authorizer, Gate, IamAuthorizer, LambdaAuthorizer, Source
from .cors import HttpCors, RestCors, http_cors, rest_cors
from .jwt_auth import JwtAuthorizer, KeySet

__all__ = ["Access", "Apis"]

log = logging.getLogger("warmstart")

API_TYPES = {"Api": "AWS::Serverless::Api", "HttpApi": "AWS::Serverless::HttpApi"}
REST_AUTH_KEYS = (
    "Authorizers",
    "DefaultAuthorizer",
    "InvokeRole",
    "AddDefaultAuthorizerToCorsPreflight",
    "AddApiKeyRequiredToCorsPreflight",
    "ApiKeyRequired",
    "ResourcePolicy",
    "UsagePlan",
)
HTTP_AUTH_KEYS = ("Authorizers", "DefaultAuthorizer", "EnableIamAuthorizer")
REST_EVENT_AUTH_KEYS = (
    "Authorizer",
    "AuthorizationScopes",
    "ApiKeyRequired",
    "InvokeRole",
    "ResourcePolicy",
    "OverrideApiAuth",
)
HTTP_EVENT_AUTH_KEYS = ("Authorizer", "AuthorizationScopes")
COGNITO_ISSUER = r"https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[\w-]+"
_USER_POOL_ARN = re.compile(r"arn:[\w-]+:cognito-idp:([a-z0-9-]+):\d*:userpool/([\w-]+)")
_IDENTITY_SOURCE = re.compile(r"\$request\.(header|querystring)\.(.+)")
IDENTITY_KINDS = {"Headers": "header", "QueryStrings": "query", "Context": "context"}
_SCOPE = re.compile(r"[!#-\[\]-~]+")
_NO_RESOURCE_POLICY = (
    "a ResourcePolicy is not enforced locally: requests are let in as if it allowed them"
)


@dataclass(frozen=True)
class Access:
    """What API Gateway does around a route's function: its gate, an HTTP API's CORS, and for
    the OPTIONS method SAM adds to a REST API's paths, the headers it answers with."""

    gate: Gate | None = None
    cors: HttpCors | None = None
    preflight: list[tuple[bytes, bytes]] | None = None


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise TemplateError(f"must be true or false (got {describe(value)})", where)
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = expect_list(value, where, "a list of texts")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TemplateError(f"must be a text (got {describe(item)})", f"{where}[{i}]")
    return tuple(items)


def _scopes(value: Any, where: str) -> tuple[str, ...]:
    """OAuth scopes (RFC 6749: printable, no spaces, quotes or backslashes)."""
    scopes = _texts(value, f"{where}.AuthorizationScopes")
    for i, scope in enumerate(scopes):
        if not _SCOPE.fullmatch(scope):
            raise TemplateError(
                f"is not an OAuth scope (got {describe(scope)})",
                f"{where}.AuthorizationScopes[{i}]",
            )
    return scopes


def _keys(config: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in config:
        if key not in allowed:
            raise TemplateError(f"{key!r} is not a property of it ({', '.join(allowed)})", where)


def _pattern(value: Any, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TemplateError(f"must be a regular expression (got {describe(value)})", where)
    try:
        return re.compile(value)
    except re.error as e:
        raise TemplateError(f"is not a regular expression: {e}", where) from None


def _token_header(identity: dict[str, Any], where: str) -> tuple[Source, re.Pattern[str] | None]:
    """A REST TOKEN or Cognito authorizer's header (Authorization unless said) and the
    ValidationExpression its token must match."""
    header = identity.get("Header", "Authorization")
    if not isinstance(header, str) or not header:
        raise TemplateError(f"must be a header name (got {describe(header)})", f"{where}.Header")
    pattern = identity.get("ValidationExpression")
    return ("header", header.lower()), _pattern(pattern, f"{where}.ValidationExpression")


class _Api:
    """One API's CORS and authorizers, and how a route of it is guarded."""

    def __init__(
        self,
        kind: str,
        api_id: str,
        props: dict[str, Any],
        where: str,
        apis: Apis,
    ) -> None:
        self.rest = kind == "Api"
        self.id = api_id
        self.apis = apis
        self.said: set[str] = set()
        self.cors: RestCors | HttpCors | None
        if self.rest:
            self.cors = rest_cors(props.get("Cors"), f"{where}.Cors")
        else:
            self.cors = http_cors(props.get("CorsConfiguration"), f"{where}.CorsConfiguration")
        at = f"{where}.Auth"
        auth = expect_map(props.get("Auth"), at)
        _keys(auth, REST_AUTH_KEYS if self.rest else HTTP_AUTH_KEYS, at)
        self.authorizers: dict[str, Authorizer] = {}
        self.scopes: dict[str, tuple[str, ...]] = {}
        configs = expect_map(auth.get("Authorizers"), f"{at}.Authorizers")
        for name, config in configs.items():
            here = f"{at}.Authorizers.{name}"
            config = expect_map(config, here)
            self.scopes[name] = _scopes(config.get("AuthorizationScopes"), here)
            self.authorizers[name] = self._authorizer(name, config, here)
        self.iam = self.rest or _flag(
            auth.get("EnableIamAuthorizer", False), f"{at}.EnableIamAuthorizer"
        )
        self.default = auth.get("DefaultAuthorizer")
        if self.default is not None:
            self._known(self.default, f"{at}.DefaultAuthorizer")
        self.api_key = _flag(auth.get("ApiKeyRequired", False), f"{at}.ApiKeyRequired")
        self.preflight_auth = _flag(
            auth.get("AddDefaultAuthorizerToCorsPreflight", True),
            f"{at}.AddDefaultAuthorizerToCorsPreflight",
        )
        self.preflight_key = _flag(
            auth.get("AddApiKeyRequiredToCorsPreflight", True),
            f"{at}.AddApiKeyRequiredToCorsPreflight",
        )
        if auth.get("ResourcePolicy"):
            self.say(_NO_RESOURCE_POLICY)
        if auth.get("UsagePlan"):
            self.say("its UsagePlan (quotas, throttling) is not applied locally")

    def say(self, line: str) -> None:
        """A line at start about what this API does differently here (once)."""
        if line not in self.said:
            self.said.add(line)
            log.warning("%s %s: %s", "API" if self.rest else "HTTP API", self.id, line)

    def _known(self, name: Any, where: str) -> None:
        if isinstance(name, str) and (
            name in self.authorizers or name == "NONE" or (name == "AWS_IAM" and self.iam)
        ):
            return
        if name == "AWS_IAM":
            raise TemplateError(
                "AWS_IAM needs Auth.EnableIamAuthorizer: true on the HttpApi", where
            )
        known = ", ".join(self.authorizers) or "none"
        raise TemplateError(
            f"{describe(name)} is not an authorizer of {self.id} (its Auth.Authorizers: {known})",
            where,
        )

    # -- authorizers -----------------------------------------------------------------------

    def _authorizer(self, name: str, config: dict[str, Any], where: str) -> Authorizer:
        if self.rest and "UserPoolArn" in config:
            return self._cognito(name, config, where)
        if not self.rest and "JwtConfiguration" in config:
            return self._jwt(name, config, where)
        if "FunctionArn" in config:
            return self._lambda(name, config, where)
        wanted = "UserPoolArn (Cognito)" if self.rest else "JwtConfiguration (JWT)"
        raise TemplateError(f"needs FunctionArn (a Lambda authorizer) or {wanted}", where)

    def _lambda(self, name: str, config: dict[str, Any], where: str) -> LambdaAuthorizer:
        found = function_of_arn(config["FunctionArn"], self.apis.specs)
        function = qualifier = None
        if found is None:
            self.say(
                f"authorizer {name}: its FunctionArn ({describe(config['FunctionArn'])}) names no "
                "function of this template; the requests it guards are answered 500, as API "
                "Gateway answers when it cannot invoke an authorizer"
            )
        else:
            function, qualifier = found[0].name, found[1]
        at = f"{where}.Identity"
        identity = expect_map(config.get("Identity"), at)
        if self.rest:
            kind = config.get("FunctionPayloadType", "TOKEN")
            if kind not in ("TOKEN", "REQUEST"):
                raise TemplateError(
                    f"must be TOKEN or REQUEST (got {describe(kind)})",
                    f"{where}.FunctionPayloadType",
                )
            ttl = self._ttl(identity, at, 300)
            if kind == "TOKEN":
                source, validation = _token_header(identity, at)
                return LambdaAuthorizer(
                    name, function, qualifier, rest=True, token=True, sources=(source,),
                    validation=validation, ttl=ttl,
                )  # fmt: skip
            sources = self._sources(name, identity, at)
            if not sources and ttl:
                raise TemplateError(
                    "a REQUEST authorizer that caches (ReauthorizeEvery above 0) needs Headers, "
                    "QueryStrings, StageVariables or Context",
                    at,
                )
            return LambdaAuthorizer(name, function, qualifier, sources=sources, ttl=ttl)
        given = config.get("AuthorizerPayloadFormatVersion")
        payload = text_of(given) if given is not None else ""
        if payload not in ("1.0", "2.0"):
            raise TemplateError(
                f"must be '1.0' or '2.0' (got {describe(given)})",
                f"{where}.AuthorizerPayloadFormatVersion",
            )
        simple = _flag(config.get("EnableSimpleResponses", False), f"{where}.EnableSimpleResponses")
        if simple and payload != "2.0":
            raise TemplateError(
                "simple responses need AuthorizerPayloadFormatVersion '2.0'",
                f"{where}.EnableSimpleResponses",
            )
        sources = self._sources(name, identity, at)
        ttl = self._ttl(identity, at, 0)
        return LambdaAuthorizer(
            name, function, qualifier, rest=False, sources=sources,
            ttl=ttl if sources else 0, payload=payload, simple=simple,
        )  # fmt: skip

    @staticmethod
    def _ttl(identity: dict[str, Any], where: str, default: int) -> int:
        value = identity.get("ReauthorizeEvery", default)
        return expect_int(value, f"{where}.ReauthorizeEvery", 0, 3600)

    def _sources(self, name: str, identity: dict[str, Any], where: str) -> tuple[Source, ...]:
        sources: list[Source] = []
        for key, kind in IDENTITY_KINDS.items():
            for item in _texts(identity.get(key), f"{where}.{key}"):
                sources.append((kind, item.lower() if kind == "header" else item))
        for item in _texts(identity.get("StageVariables"), f"{where}.StageVariables"):
            sources.append(("stage", item))
            self.say(
                f"authorizer {name}: stage variables are not kept locally, so its identity "
                f"source {item} is always missing (401)"
            )
        return tuple(sources)

    def _unknown_id(self, value: Any) -> bool:
        """Whether a value is, or ends in, an id only AWS knows (a template resource's)."""
        if isinstance(value, Unresolved):
            return True
        last = value.rsplit("/", 1)[-1] if isinstance(value, str) else None
        return last in self.apis.resources

    def _cognito(self, name: str, config: dict[str, Any], where: str) -> JwtAuthorizer:
        arns = config["UserPoolArn"]
        issuers = []
        for arn in arns if isinstance(arns, list) else [arns]:
            m = _USER_POOL_ARN.fullmatch(arn) if isinstance(arn, str) else None
            if m and m.group(2) not in self.apis.resources:
                issuers.append(
                    re.escape(f"https://cognito-idp.{m.group(1)}.amazonaws.com/{m.group(2)}")
                )
            elif m or self._unknown_id(arn):
                issuers.append(COGNITO_ISSUER)
                self.say(
                    f"authorizer {name}: the user pool's id ({describe(arn)}) is only known on "
                    "AWS: tokens of any Cognito user pool are taken"
                )
            else:
                raise TemplateError(
                    f"must be a user pool ARN (got {describe(arn)})", f"{where}.UserPoolArn"
                )
        self.say(
            f"authorizer {name}: which app clients belong to the pool is only known on AWS: an "
            "ID token's audience is not checked"
        )
        self._unsigned(name)
        at = f"{where}.Identity"
        source, validation = _token_header(expect_map(config.get("Identity"), at), at)
        return JwtAuthorizer(
            name, re.compile("|".join(issuers)), (), source, self.apis.keys, rest=True,
            validation=validation,
        )  # fmt: skip

    def _jwt(self, name: str, config: dict[str, Any], where: str) -> JwtAuthorizer:
        at = f"{where}.JwtConfiguration"
        jwt_config = {k.lower(): v for k, v in expect_map(config["JwtConfiguration"], at).items()}
        issuer = jwt_config.get("issuer")
        if isinstance(issuer, Unresolved):
            pattern = r"https://\S+"
            self.say(f"authorizer {name}: its issuer ({describe(issuer)}): any issuer is taken")
        elif isinstance(issuer, str) and self._unknown_id(issuer):
            pattern = re.escape(issuer.rsplit("/", 1)[0]) + r"/[\w-]+"
            self.say(
                f"authorizer {name}: its issuer ({describe(issuer)}) ends in an id only known on "
                "AWS: any id there is taken"
            )
        elif isinstance(issuer, str) and issuer:
            pattern = re.escape(issuer)
        else:
            raise TemplateError(
                f"must be the issuer's URL (got {describe(issuer)})", f"{at}.issuer"
            )
        audience = jwt_config.get("audience")
        items = audience if isinstance(audience, list) else [] if audience is None else [audience]
        for i, item in enumerate(items):
            if not isinstance(item, (str, Unresolved)):
                raise TemplateError(f"must be a text (got {describe(item)})", f"{at}.audience[{i}]")
        if any(self._unknown_id(a) for a in items):
            self.say(
                f"authorizer {name}: an audience ({', '.join(describe(a) for a in items)}) is an "
                "app client id only known on AWS: the audience is not checked"
            )
            items = []
        source = config.get("IdentitySource")
        m = _IDENTITY_SOURCE.fullmatch(source) if isinstance(source, str) else None
        if m is None:
            raise TemplateError(
                "must be $request.header.NAME or $request.querystring.NAME "
                f"(got {describe(source)})",
                f"{where}.IdentitySource",
            )
        kind = "header" if m.group(1) == "header" else "query"
        self._unsigned(name)
        return JwtAuthorizer(
            name, re.compile(pattern), tuple(items),
            (kind, m.group(2).lower() if kind == "header" else m.group(2)), self.apis.keys,
        )  # fmt: skip

    def _unsigned(self, name: str) -> None:
        if self.apis.keys is None:
            self.say(
                f"authorizer {name}: tokens' signatures are not checked (no --jwks given), "
                "their other claims are"
            )

    # -- routes ----------------------------------------------------------------------------

    def gate(self, event_auth: Any, where: str) -> Gate | None:
        """A route's gate, from its event's Auth and the API's defaults."""
        auth = expect_map(event_auth, where)
        _keys(auth, REST_EVENT_AUTH_KEYS if self.rest else HTTP_EVENT_AUTH_KEYS, where)
        name = auth.get("Authorizer", self.default)
        authorizer: Authorizer | None = None
        if name is not None:
            self._known(name, f"{where}.Authorizer")
            if name == "AWS_IAM":
                authorizer = IamAuthorizer(self.rest)
                self.say(
                    "AWS_IAM: signatures are not checked against IAM locally: an unsigned request "
                    "is refused (403), any signed one let in"
                )
            elif name != "NONE":
                authorizer = self.authorizers[name]
        scopes = _scopes(auth.get("AuthorizationScopes"), where)
        if "AuthorizationScopes" not in auth and isinstance(name, str):
            scopes = self.scopes.get(name, ())
        api_key = self.rest and _flag(
            auth.get("ApiKeyRequired", self.api_key), f"{where}.ApiKeyRequired"
        )
        if api_key:
            self.say(
                "API keys are not checked against usage plans locally: a request without "
                "x-api-key is refused (403), any key let in"
            )
        if auth.get("ResourcePolicy"):
            self.say(_NO_RESOURCE_POLICY)
        if authorizer is None and not api_key:
            return None
        return Gate(authorizer, scopes, api_key)

    def preflight_gate(self) -> Gate | None:
        """The gate SAM puts on the OPTIONS methods it adds for CORS."""
        name = self.default if self.preflight_auth and self.default != "NONE" else None
        api_key = self.api_key and self.preflight_key
        if name is None and not api_key:
            return None
        authorizer = IamAuthorizer(True) if name == "AWS_IAM" else self.authorizers.get(name or "")
        return Gate(authorizer, self.scopes.get(name or "", ()), api_key)


class Apis:
    """The template's APIs (those routes use), read once: `access` guards each route.

    Example: apis = Apis(t.resources, t.api_globals, list(t.functions.values()))
    """

    def __init__(
        self,
        resources: dict[str, Any],
        api_globals: dict[str, dict[str, Any]] | None,
        specs: list[FunctionSpec],
        keys: KeySet | None = None,
    ) -> None:
        self.resources = resources
        self.globals = api_globals or {}
        self.specs = specs
        self.keys = keys
        self._apis: dict[tuple[str, str], _Api] = {}

    def api(self, kind: str, api_id: str) -> _Api:
        found = self._apis.get((kind, api_id))
        if found is None:
            glob = self.globals.get(kind) or {}
            res = self.resources.get(api_id)
            if res is not None and res.get("Type") == API_TYPES[kind]:
                props = merge_globals(
                    glob, expect_map(res.get("Properties"), f"Resources.{api_id}.Properties")
                )
                where = f"Resources.{api_id}.Properties"
            else:
                props, where = glob, f"Globals.{kind}"
            found = self._apis[(kind, api_id)] = _Api(kind, api_id, props, where, self)
        return found

    def access(self, kind: str, api_id: str, event_auth: Any, where: str) -> Access | None:
        """What guards a route of this API (None: nothing, the common case)."""
        api = self.api(kind, api_id)
        gate = api.gate(event_auth, where)
        cors = api.cors if isinstance(api.cors, HttpCors) else None
        if gate is None and cors is None:
            return None
        return Access(gate, cors)

    def preflight(self, api_id: str, methods: set[str]) -> Access | None:
        """The OPTIONS method SAM adds to a path of a REST API with Cors (None: no Cors)."""
        api = self.api("Api", api_id)
        if not isinstance(api.cors, RestCors):
            return None
        return Access(api.preflight_gate(), None, api.cors.preflight(methods))
