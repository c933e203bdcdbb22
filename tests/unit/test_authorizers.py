"""The pure parts of API Gateway's authorizers: IAM policy evaluation, Lambda authorizers' results
and cache (with a stand-in for the engine's invoke; tests/e2e/test_apigw_auth.py runs them for
real), JWT checks, key sets, FunctionArn to function, and the template's Auth read as SAM reads
it, with the lines said at start."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import logging
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import spec
from warmstart import TemplateError, WarmstartError, load_template
from warmstart.frontdoor import authorizers
from warmstart.frontdoor.apigw import Route, routes
from warmstart.frontdoor.authorizers import (
    AuthRequest,
    Gate,
    IamAuthorizer,
    LambdaAuthorizer,
    Refusal,
    evaluate_policy,
)
from warmstart.frontdoor.jwt_auth import JwtAuthorizer, KeySet
from warmstart.sam.arns import function_of_arn
from warmstart.sam.values import Unresolved

ARN = "arn:aws:execute-api:us-east-1:123456789012:Api/dev/GET/items/7"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}


def statement(effect: str, resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource, **more}


# -- policies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statements, verdict",
    [
        ([statement("Allow", ARN)], "allow"),
        ([statement("Allow", "arn:aws:execute-api:*:*:Api/*/GET/*")], "allow"),
        (
            [statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:Api/dev/GET/items/?")],
            "allow",
        ),
        (
            [statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:Api/dev/POST/*")],
            "implicit",
        ),
        ([statement("Allow", ARN.upper())], "implicit"),  # resources are case-sensitive
        ([statement("Allow"), statement("Deny", [ARN])], "deny"),  # an explicit Deny wins
        ([statement("Deny", "arn:aws:execute-api:*:*:Other/*"), statement("Allow")], "allow"),
        ([{"Effect": "Allow", "Action": ["s3:*", "EXECUTE-API:*"], "Resource": "*"}], "allow"),
        ([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}], "implicit"),
        ([{"Effect": "Allow", "Action": "*", "NotResource": "arn:*:Other/*"}], "allow"),
        ([statement("Allow", Condition={"IpAddress": {}})], "implicit"),  # not evaluated: no
        ([statement("Allow"), statement("Deny", Condition={"Bool": {}})], "deny"),
        ([statement("Allow"), statement("Deny", "arn:*:Other/*", Condition={})], "allow"),
        ([], None),
        ([{"Effect": "Maybe", "Action": "*", "Resource": "*"}], None),
        ([{"Effect": "Allow", "Resource": "*"}], None),
        ([{"Effect": "Allow", "Action": "*", "Resource": 5}], None),
        (["Allow"], None),
    ],
)
def test_policies_are_evaluated_as_iam_does(statements, verdict):
    assert evaluate_policy({"Version": "2012-10-17", "Statement": statements}, ARN) == verdict


def test_a_single_statement_and_documents_that_are_not_policies():
    assert evaluate_policy({"Statement": statement("Allow")}, ARN) == "allow"
    for document in (None, "Allow", [], {"Statement": "x"}, {}):
        assert evaluate_policy(document, ARN) is None


# -- Lambda authorizers -------------------------------------------------------------------------


class Invoked:
    """The engine's invoke, standing in: each call recorded, answered with `result`."""

    def __init__(self, result: Any, error: bool = False) -> None:
        self.result = result
        self.error = error
        self.events: list[Any] = []

    async def __call__(self, function: str, event: Any, qualifier: str | None) -> Any:
        self.events.append(event)
        return type("Res", (), {"payload": self.result, "function_error": self.error})()


def request(
    invoke: Invoked, headers: dict[str, str] | None = None, version: str = "1.0"
) -> AuthRequest:
    event = {
        "version": version,
        "headers": headers or {},
        "requestContext": {"stage": "dev", "http": {"method": "GET"}, "authorizer": "stale"},
        "body": "secret body",
    }
    return AuthRequest(
        {k.lower(): v for k, v in (headers or {}).items()},
        {"q": "1"},
        ARN,
        version,
        event,
        lambda v: {**event, "version": v},
        invoke,
    )


def allow(**context: Any) -> dict[str, Any]:
    return {
        "principalId": "ann",
        "policyDocument": {"Statement": [statement("Allow")]},
        "context": context,
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_token_authorizer_gets_the_token_and_the_method_arn():
    invoke = Invoked(allow(n=1, ok=True, name="x", nothing=None))
    auth = LambdaAuthorizer("T", "Fn", token=True, sources=(("header", "authorization"),), ttl=0)
    verdict = run(auth.authorize(request(invoke, {"Authorization": "tok"}), ()))
    assert invoke.events == [{"type": "TOKEN", "authorizationToken": "tok", "methodArn": ARN}]
    assert verdict["principalId"] == "ann"
    assert {k: verdict[k] for k in ("n", "ok", "name")} == {"n": "1", "ok": "true", "name": "x"}
    assert "nothing" not in verdict and isinstance(verdict["integrationLatency"], int)


@pytest.mark.parametrize(
    "result, error, refusal",
    [
        (
            {"errorMessage": "Unauthorized", "errorType": "Exception"},
            True,
            authorizers.REST_UNAUTHORIZED,
        ),
        (
            {"errorMessage": "boom", "errorType": "RuntimeError"},
            True,
            authorizers.REST_AUTHORIZER_ERROR,
        ),
        ("not a map", False, authorizers.REST_AUTHORIZER_ERROR),
        ({"principalId": "a"}, False, authorizers.REST_AUTHORIZER_ERROR),
        (
            {"policyDocument": {"Statement": [statement("Allow")]}},
            False,
            authorizers.REST_AUTHORIZER_ERROR,
        ),
        (allow(nested={"a": 1}), False, authorizers.REST_AUTHORIZER_ERROR),
        ({**allow(), "context": "x"}, False, authorizers.REST_AUTHORIZER_ERROR),
        (
            {"principalId": "a", "policyDocument": {"Statement": [statement("Deny")]}},
            False,
            authorizers.REST_EXPLICIT_DENY,
        ),
        (
            {"principalId": "a", "policyDocument": {"Statement": [statement("Allow", "x")]}},
            False,
            authorizers.REST_NOT_ALLOWED,
        ),
    ],
)
def test_a_rest_authorizers_answers_become_api_gateways(result, error, refusal):
    auth = LambdaAuthorizer("T", "Fn", token=True, sources=(("header", "authorization"),))
    assert (
        run(auth.authorize(request(Invoked(result, error), {"Authorization": "t"}), ())) == refusal
    )


def test_a_missing_identity_or_function_is_refused_without_invoking():
    invoke = Invoked(allow())
    token = LambdaAuthorizer("T", "Fn", token=True, sources=(("header", "authorization"),))
    assert run(token.authorize(request(invoke), ())) == authorizers.REST_UNAUTHORIZED
    strict = LambdaAuthorizer(
        "T", "Fn", token=True, sources=(("header", "authorization"),),
        validation=__import__("re").compile("Bearer [a-z]+"),
    )  # fmt: skip
    assert run(strict.authorize(request(invoke, {"Authorization": "Bearer X1"}), ())).status == 401
    nowhere = LambdaAuthorizer("T", None, token=True, sources=(("header", "authorization"),))
    assert run(nowhere.authorize(request(invoke, {"Authorization": "t"}), ())).status == 500
    req = LambdaAuthorizer("R", "Fn", sources=(("header", "x-user"), ("stage", "v")))
    assert run(req.authorize(request(invoke, {"X-User": "a"}), ())).status == 401
    assert invoke.events == []


def test_results_are_cached_by_identity_until_they_expire(monkeypatch):
    invoke = Invoked(allow(user="a"))
    auth = LambdaAuthorizer("T", "Fn", token=True, sources=(("header", "authorization"),), ttl=300)
    for _ in range(3):
        assert run(auth.authorize(request(invoke, {"Authorization": "one"}), ()))["user"] == "a"
    assert len(invoke.events) == 1
    run(auth.authorize(request(invoke, {"Authorization": "two"}), ()))
    assert len(invoke.events) == 2
    now = time.monotonic()
    monkeypatch.setattr(authorizers.time, "monotonic", lambda: now + 301)
    run(auth.authorize(request(invoke, {"Authorization": "one"}), ()))
    assert len(invoke.events) == 3
    # Errors are not kept; a cache that is full drops what expired, then the oldest.
    failing = LambdaAuthorizer(
        "T", "Fn", token=True, sources=(("header", "authorization"),), ttl=300
    )
    failed = Invoked({"errorMessage": "Unauthorized"}, error=True)
    for _ in range(2):
        run(failing.authorize(request(failed, {"Authorization": "x"}), ()))
    assert len(failed.events) == 2 and failing.cache == {}
    monkeypatch.setattr(authorizers, "CACHE_ENTRIES", 3)
    for token in "abcde":
        run(auth.authorize(request(invoke, {"Authorization": token}), ()))
    assert len(auth.cache) == 3 and ("e",) in auth.cache and ("a",) not in auth.cache


def test_http_api_authorizers_take_their_payload_format():
    invoke = Invoked({"isAuthorized": True, "context": {"roles": ["a"]}})
    simple = LambdaAuthorizer(
        "S", "Fn", rest=False, sources=(("header", "authorization"), ("query", "q")),
        payload="2.0", simple=True,
    )  # fmt: skip
    verdict = run(simple.authorize(request(invoke, {"Authorization": "t"}, "2.0"), ()))
    assert verdict == {"lambda": {"roles": ["a"]}}
    sent = invoke.events[0]
    assert (sent["version"], sent["type"], sent["routeArn"]) == ("2.0", "REQUEST", ARN)
    assert sent["identitySource"] == ["t", "1"] and "body" not in sent
    assert "authorizer" not in sent["requestContext"]
    for answer, status in (
        ({"isAuthorized": False}, 403),
        ({"isAuthorized": "yes"}, 500),
        ([], 500),
    ):
        got = run(simple.authorize(request(Invoked(answer), {"Authorization": "t"}, "2.0"), ()))
        assert got.status == status
    policy = LambdaAuthorizer("P", "Fn", rest=False, sources=(("header", "authorization"),))
    invoke = Invoked(allow(k=[1]))
    verdict = run(policy.authorize(request(invoke, {"Authorization": "t"}, "1.0"), ()))
    assert verdict["principalId"] == "ann" and verdict["k"] == [1]  # not made text: HTTP API
    sent = invoke.events[0]
    assert (sent["version"], sent["identitySource"], sent["authorizationToken"]) == (
        "1.0",
        "t",
        "t",
    )
    denied = Invoked({"principalId": "a", "policyDocument": {"Statement": [statement("Deny")]}})
    assert (
        run(policy.authorize(request(denied, {"Authorization": "t"}), ()))
        == authorizers.HTTP_FORBIDDEN
    )


def test_gates_check_api_keys_after_the_authorizer_and_iam_wants_a_signature():
    invoke = Invoked(allow())
    keyed = Gate(None, api_key=True)
    assert run(keyed.check(request(invoke))) == authorizers.REST_NO_API_KEY
    assert run(keyed.check(request(invoke, {"x-api-key": "k"}))) is None
    iam = Gate(IamAuthorizer(rest=True))
    assert run(iam.check(request(invoke))) == authorizers.REST_NO_SIGNATURE
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=A/1/us-east-1/execute-api/aws4_request"}
    assert run(iam.check(request(invoke, signed))) is None
    assert run(Gate(IamAuthorizer(rest=False)).check(request(invoke))) == authorizers.HTTP_FORBIDDEN


# -- JWT ----------------------------------------------------------------------------------------


def raw(header: Any, claims: Any) -> str:
    """A token as anyone can write one: any header, any claims, a signature that is not one."""

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.c2ln"


def token(
    key: Any = KEY, alg: str = "RS256", header: dict[str, Any] | None = None, **claims: Any
) -> str:
    body = {"iss": "https://i.test", "aud": "api", "exp": int(time.time()) + 60, **claims}
    body = {k: v for k, v in body.items() if v is not None}  # None: no such claim
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1", **(header or {})})


def checker(keys: KeySet | None, audience: tuple[str, ...] = ("api",)) -> JwtAuthorizer:
    return JwtAuthorizer(
        "J",
        __import__("re").compile(r"https://i\.test"),
        audience,
        ("header", "authorization"),
        keys,
    )


@pytest.fixture
def keys(tmp_path: Path) -> KeySet:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [JWK]}))
    return KeySet([str(tmp_path / "jwks.json")])


def test_jwt_claims_are_checked_as_api_gateway_checks_them(keys):
    check = checker(keys)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert run(check.claims(token()))["aud"] == "api"
    assert run(check.claims(token(aud=["x", "api"])))["iss"] == "https://i.test"
    assert run(check.claims(token(aud=None, client_id="api")))["client_id"] == "api"
    for bad, why in (
        (token(exp=int(time.time()) - 1), "the token has expired"),
        (token(exp=None), "the token has no exp claim"),
        (token(exp="soon"), "the token could not be decoded"),
        (token(nbf=int(time.time()) + 60), "the token is not valid yet"),
        (token(iss="https://i.test/"), "the token does not have a valid issuer"),
        (token(iss=None), "the token does not have a valid issuer"),
        (token(aud="apix"), "the token does not have a valid audience"),
        (token(other), "the token's signature is invalid"),
        (raw({"alg": "RS256"}, {"exp": 2**40}), "the token has no kid"),
        (raw({"alg": "RS256", "kid": 5}, {"exp": 2**40}), "the token could not be decoded"),
        (token(header={"kid": "k9"}), "no key of the --jwks key sets has the token's kid"),
        (token("s" * 32, alg="HS256"), "signing method HS256 is invalid"),
        (raw({"alg": "none\r\nx", "kid": "k1"}, {}), "signing method of the token is invalid"),
        (raw({"alg": ["RS256"], "kid": "k1"}, {}), "signing method of the token is invalid"),
        (
            raw({"alg": "RS256", "kid": "k1"}, {"exp": 2**40, "iss": "https://i.test"}),
            "the token's signature is invalid",
        ),
        (jwt.encode({"a": 1}, None, algorithm="none"), "signing method none is invalid"),
        ("a.b", "the token could not be decoded"),
        ("", "the token could not be decoded"),
    ):
        assert run(check.claims(bad)) == why, why


def test_without_keys_everything_but_the_signature_is_checked():
    check = checker(None, audience=())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert run(check.claims(token(other, aud="anyone")))["aud"] == "anyone"
    assert run(check.claims(token(other, exp=int(time.time()) - 1))) == "the token has expired"
    assert run(check.claims(raw({"alg": "RS256"}, {"exp": 2**40}))) == "the token has no kid"
    unsigned = raw({"alg": "RS256", "kid": "x"}, {"exp": 2**40, "iss": "https://i.test"})
    assert run(check.claims(unsigned))["exp"] == 2**40
    assert run(check.claims(raw({"alg": "RS256", "kid": "x"}, ["a"]))) == (
        "the token could not be decoded"
    )


def test_jwt_answers_and_what_the_function_gets(keys):
    check = checker(keys)
    req = request(
        Invoked(None), {"Authorization": "Bearer " + token(scp=["a", "b"], n=5, ok=True)}, "2.0"
    )
    verdict = run(check.authorize(req, ("b",)))
    assert verdict["jwt"]["scopes"] == ["a", "b"]
    assert {k: verdict["jwt"]["claims"][k] for k in ("scp", "n", "ok")} == {
        "scp": "[a b]",
        "n": "5",
        "ok": "true",
    }
    refused = run(check.authorize(req, ("c",)))
    assert (
        refused.status == 403 and b'scope="c" error="insufficient_scope"' in refused.headers[0][1]
    )
    v1 = request(Invoked(None), {"Authorization": token()}, "1.0")
    assert set(run(check.authorize(v1, ()))) == {"claims", "scopes"}
    assert run(check.authorize(request(Invoked(None)), ())) == authorizers.HTTP_UNAUTHORIZED
    expired = request(Invoked(None), {"Authorization": token(exp=1)}, "2.0")
    refusal = run(check.authorize(expired, ("s1", "s2")))
    assert isinstance(refusal, Refusal) and refusal.status == 401
    assert refusal.headers == (
        (
            b"www-authenticate",
            b'Bearer scope="s1 s2" error="invalid_token" error_description="the token has expired"',
        ),
    )


def test_a_cognito_authorizer_wants_an_id_token_or_an_access_token_with_a_scope(keys):
    pool = JwtAuthorizer(
        "P",
        __import__("re").compile(r"https://i\.test"),
        (),
        ("header", "authorization"),
        keys,
        rest=True,
    )
    id_token = request(Invoked(None), {"Authorization": token(token_use="id", exp=2_000_000_000)})
    claims = run(pool.authorize(id_token, ()))["claims"]
    assert claims["exp"] == "Wed May 18 03:33:20 UTC 2033"
    assert run(pool.authorize(id_token, ("orders/read",))) == authorizers.REST_UNAUTHORIZED
    access = request(
        Invoked(None), {"Authorization": token(token_use="access", scope="orders/read")}
    )
    assert run(pool.authorize(access, ())) == authorizers.REST_UNAUTHORIZED
    assert "claims" in run(pool.authorize(access, ("orders/read", "x")))
    expired = request(Invoked(None), {"Authorization": token(token_use="id", exp=1)})
    assert run(pool.authorize(expired, ())) == authorizers.REST_UNAUTHORIZED  # no www-authenticate


# -- key sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not a JSON Web Key Set"),
        ("[]", "not a JSON Web Key Set"),
        ('{"keys": "x"}', "not a JSON Web Key Set"),
        ('{"keys": []}', "not a JSON Web Key Set"),
        ('{"keys": [{"kty": "oct", "k": "AAAA", "kid": "h"}]}', "an RSA key that has a kid"),
        ('{"keys": [5, {"kty": "RSA", "n": "!!", "e": "AQAB", "kid": "x"}]}', "an RSA key"),
        (
            json.dumps({"keys": [{k: v for k, v in JWK.items() if k != "kid"}]}),
            "an RSA key that has a kid",
        ),
        (" " * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_bad_key_set_files_are_clear_errors(tmp_path, content, message):
    (tmp_path / "jwks.json").write_text(content)
    with pytest.raises(WarmstartError, match=message):
        KeySet([str(tmp_path / "jwks.json")])


def test_key_sets_are_read_from_loopback_only():
    for url in ("http://example.com/jwks.json", "https://10.0.0.1/k", "http://[::2]/k"):
        with pytest.raises(WarmstartError, match="only a file or a loopback URL"):
            KeySet([url])
    with pytest.raises(WarmstartError, match="not a file, nor a loopback URL"):
        KeySet(["/nonexistent/jwks.json"])


def test_a_key_set_that_is_not_a_plain_file_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it would wait for a writer
    for path in (tmp_path / "fifo", tmp_path, Path("/dev/zero")):
        with pytest.raises(WarmstartError, match="not a file"):
            KeySet([str(path)])


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback server of key sets: /jwks (what `served` holds) and /moved (a redirect)."""
    served: dict[str, Any] = {"keys": [JWK], "hits": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["hits"] += 1
            if self.path == "/slow":  # a key set that trickles in
                self.send_response(200)
                self.end_headers()
                for _ in range(30):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://example.com/jwks")
                self.end_headers()
                return
            body = json.dumps({"keys": served["keys"]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_loopback_key_set_is_fetched_again_for_a_new_kid(jwks_server, monkeypatch):
    base, served = jwks_server
    keys = KeySet([base + "/jwks"])
    assert served["hits"] == 1 and set(keys.keys) == {"k1"}
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    served["keys"] = [
        JWK,
        {**jwt.algorithms.RSAAlgorithm.to_jwk(new.public_key(), as_dict=True), "kid": "k2"},
    ]
    assert run(keys.key("k2")) is None and served["hits"] == 1  # fetched less than 10 s ago
    later = time.monotonic() + 11
    monkeypatch.setattr("warmstart.frontdoor.jwt_auth.time.monotonic", lambda: later)
    assert run(keys.key("k2")) is not None and served["hits"] == 2
    assert run(checker(keys).claims(token(new, header={"kid": "k2"})))["aud"] == "api"


def test_a_key_set_url_that_redirects_is_down_or_slow_is_said(jwks_server, caplog, monkeypatch):
    base, served = jwks_server
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        keys = KeySet([base + "/moved"])
    assert served["hits"] == 1 and keys.keys == {}  # the redirect was not followed
    assert "cannot be read" in caplog.text
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        KeySet(["http://127.0.0.1:9/jwks"])  # nothing listens: tried again later
    assert "tried again when a token names a key" in caplog.text
    monkeypatch.setattr("warmstart.frontdoor.jwt_auth.FETCH_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        KeySet([base + "/slow"])
    assert "not read whole within 0.5 s" in caplog.text and time.monotonic() - started < 2.5


# -- FunctionArn --------------------------------------------------------------------------------


def test_an_authorizers_function_arn_names_a_function_of_the_template():
    specs = [spec("Auth", "a.b", logical_id="AuthFn"), spec("Other", "a.b")]
    assert function_of_arn(Unresolved("Fn::GetAtt AuthFn.Arn", "AuthFn.Arn"), specs) == (
        specs[0],
        None,
    )
    assert function_of_arn(Unresolved("Fn::Sub '${Other.Arn}'", "Other.Arn"), specs) == (
        specs[1],
        None,
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Auth:live"
    assert function_of_arn(arn, specs) == (specs[0], "live")
    assert function_of_arn("arn:aws:lambda:us-east-1:123456789012:function:Nope", specs) is None
    for value in (
        "AuthFn",
        None,
        5,
        ["AuthFn.Arn"],
        Unresolved("Fn::ImportValue X", "<Fn::ImportValue>"),
    ):
        assert function_of_arn(value, specs) is None


# -- the template's Auth ------------------------------------------------------------------------

BASE = """
Globals:
  Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
Resources:
  AuthFn:
    Type: AWS::Serverless::Function
  Pool:
    Type: AWS::Cognito::UserPool
  Client:
    Type: AWS::Cognito::UserPoolClient
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Auth: REST_AUTH
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth: HTTP_AUTH
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Rest: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /r, Method: get, Auth: REST_EVENT}}
        Http: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /h, Method: get, Auth: HTTP_EVENT}}
"""


def table(tmp_path: Path, keys: KeySet | None = None, **parts: str) -> dict[str, Route]:
    body = BASE
    for name in ("REST_AUTH", "HTTP_AUTH", "REST_EVENT", "HTTP_EVENT"):
        body = body.replace(name, parts.get(name.lower(), "{}"))
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "template.yaml").write_text(textwrap.dedent(body))
    t = load_template(tmp_path / "template.yaml")
    return {r.path: r for r in routes(list(t.functions.values()), t.resources, t.api_globals, keys)}


def test_routes_take_the_apis_default_authorizer_unless_they_say_otherwise(tmp_path):
    rest = "{DefaultAuthorizer: T, Authorizers: {T: {FunctionArn: !GetAtt AuthFn.Arn}}}"
    by = table(tmp_path, rest_auth=rest)
    gate = by["/r"].access.gate  # type: ignore[union-attr]
    assert isinstance(gate.authorizer, LambdaAuthorizer)
    assert (gate.authorizer.function, gate.authorizer.ttl, gate.authorizer.token) == (
        "AuthFn",
        300,
        True,
    )
    assert by["/h"].access is None
    assert table(tmp_path, rest_auth=rest, rest_event="{Authorizer: NONE}")["/r"].access is None


@pytest.mark.parametrize(
    "parts, where, message",
    [
        ({"rest_auth": "{Bogus: 1}"}, "Api.Properties.Auth", "'Bogus' is not a property"),
        (
            {"rest_auth": "{DefaultAuthorizer: X}"},
            "Auth.DefaultAuthorizer",
            "'X' is not an authorizer of Api",
        ),
        (
            {"rest_event": "{Authorizer: X}"},
            "Events.Rest.Properties.Auth.Authorizer",
            "not an authorizer",
        ),
        (
            {"rest_event": "{Authorizer: [a]}"},
            "Events.Rest.Properties.Auth.Authorizer",
            "a list is not an authorizer",
        ),
        (
            {"rest_event": "{Scopes: [a]}"},
            "Events.Rest.Properties.Auth",
            "'Scopes' is not a property",
        ),
        ({"rest_auth": "{Authorizers: {T: {}}}"}, "Authorizers.T", "needs FunctionArn"),
        (
            {"rest_auth": "{Authorizers: {T: {FunctionArn: x, FunctionPayloadType: JWT}}}"},
            "FunctionPayloadType",
            "TOKEN or REQUEST",
        ),
        (
            {"rest_auth": "{Authorizers: {T: {FunctionArn: x, FunctionPayloadType: REQUEST}}}"},
            "Authorizers.T.Identity",
            "needs Headers",
        ),
        (
            {
                "rest_auth": "{Authorizers: {T: {FunctionArn: x, Identity: {ReauthorizeEvery: 3601}}}}"
            },
            "ReauthorizeEvery",
            "outside 0..3600",
        ),
        (
            {
                "rest_auth": "{Authorizers: {T: {FunctionArn: x, Identity: {ValidationExpression: '('}}}}"
            },
            "ValidationExpression",
            "not a regular expression",
        ),
        (
            {"rest_auth": "{Authorizers: {T: {UserPoolArn: pool}}}"},
            "UserPoolArn",
            "must be a user pool ARN",
        ),
        ({"rest_auth": "{ApiKeyRequired: maybe}"}, "Auth.ApiKeyRequired", "must be true or false"),
        (
            {"http_auth": "{DefaultAuthorizer: AWS_IAM}"},
            "Auth.DefaultAuthorizer",
            "EnableIamAuthorizer",
        ),
        (
            {"http_auth": "{Authorizers: {L: {FunctionArn: x}}}"},
            "AuthorizerPayloadFormatVersion",
            "'1.0' or '2.0'",
        ),
        (
            {
                "http_auth": "{Authorizers: {L: {FunctionArn: x, AuthorizerPayloadFormatVersion: '1.0', EnableSimpleResponses: true}}}"
            },
            "EnableSimpleResponses",
            "need AuthorizerPayloadFormatVersion '2.0'",
        ),
        (
            {
                "http_auth": "{Authorizers: {J: {JwtConfiguration: {issuer: https://i}, IdentitySource: Authorization}}}"
            },
            "IdentitySource",
            "$request.header.NAME",
        ),
        (
            {
                "http_auth": "{Authorizers: {J: {JwtConfiguration: {audience: [a]}, IdentitySource: $request.header.A}}}"
            },
            "JwtConfiguration.issuer",
            "issuer's URL",
        ),
        (
            {
                "http_auth": "{Authorizers: {J: {JwtConfiguration: {issuer: https://i}, IdentitySource: $request.header.A}}}",
                "http_event": "{Authorizer: J, AuthorizationScopes: ['a\\\"b']}",
            },
            "Events.Http.Properties.Auth.AuthorizationScopes[0]",
            "is not an OAuth scope",
        ),
        (
            {"http_event": "{Authorizer: J, Scopes: [a]}"},
            "Events.Http.Properties.Auth",
            "'Scopes' is not a property",
        ),
    ],
)
def test_auth_mistakes_sam_refuses_are_template_errors(tmp_path, parts, where, message):
    with pytest.raises(TemplateError) as e:
        table(tmp_path, **parts)
    assert where in e.value.where and message in e.value.problem


def test_what_cannot_be_enforced_is_said_once_at_start(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        by = table(
            tmp_path,
            rest_auth="""
              DefaultAuthorizer: C
              ResourcePolicy: {AwsAccountWhitelist: ["123456789012"]}
              UsagePlan: {CreateUsagePlan: PER_API}
              Authorizers:
                C: {UserPoolArn: !GetAtt Pool.Arn}
                Gone: {FunctionArn: !ImportValue shared-authorizer}
                R:
                  FunctionArn: !GetAtt AuthFn.Arn
                  FunctionPayloadType: REQUEST
                  Identity: {StageVariables: [v], ReauthorizeEvery: 0}""",
            http_auth="""
              DefaultAuthorizer: J
              Authorizers:
                J:
                  IdentitySource: $request.querystring.token
                  JwtConfiguration:
                    issuer: !Sub https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}
                    audience: [!Ref Client]""",
        )
    said = [r.getMessage() for r in caplog.records]
    for expected in (
        "API Api: a ResourcePolicy is not enforced locally",
        "API Api: its UsagePlan (quotas, throttling) is not applied locally",
        "API Api: authorizer C: the user pool's id (Fn::GetAtt Pool.Arn, which cannot be resolved locally) is only known on AWS",
        "API Api: authorizer C: tokens' signatures are not checked (no --jwks given)",
        "API Api: authorizer Gone: its FunctionArn (Fn::ImportValue shared-authorizer, which cannot be resolved locally) names no function",
        "API Api: authorizer R: stage variables are not kept locally",
        "HTTP API Http: authorizer J: its issuer ('https://cognito-idp.us-east-1.amazonaws.com/Pool') ends in an id only known on AWS",
        "HTTP API Http: authorizer J: an audience ('Client') is an app client id only known on AWS",
    ):
        assert sum(line.startswith(expected) for line in said) == 1, expected
    jwt_auth = by["/h"].access.gate.authorizer  # type: ignore[union-attr]
    assert isinstance(jwt_auth, JwtAuthorizer) and jwt_auth.audience == ()
    assert jwt_auth.source == ("query", "token")
    assert jwt_auth.issuer.fullmatch("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC")
    assert not jwt_auth.issuer.fullmatch("https://evil.test/us-east-1_AbC")
    cognito = by["/r"].access.gate.authorizer  # type: ignore[union-attr]
    assert cognito.issuer.fullmatch("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X")


def test_an_http_api_lambda_authorizer_caches_only_with_an_identity(tmp_path):
    auth = "{DefaultAuthorizer: L, Authorizers: {L: {FunctionArn: !GetAtt AuthFn.Arn, AuthorizerPayloadFormatVersion: '2.0', Identity: IDENTITY}}}"
    for identity, ttl in (
        ("{ReauthorizeEvery: 60}", 0),
        ("{Headers: [A], ReauthorizeEvery: 60}", 60),
        ("{Headers: [A]}", 0),
    ):
        gate = table(tmp_path, http_auth=auth.replace("IDENTITY", identity))["/h"].access.gate  # type: ignore[union-attr]
        assert gate.authorizer.ttl == ttl, identity
