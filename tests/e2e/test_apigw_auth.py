"""API Gateway's CORS and authorizers on a real `warmstart serve` (tests/apps/auth): REST CORS
mocks, an HTTP API's CORS, Lambda authorizers (TOKEN with its cache, REQUEST, HTTP API simple
responses) invoked on the engine, JWT and Cognito authorizers with a JWKS file, AWS_IAM and API
keys, and the lines said at start about what is not enforced locally."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import wait_for
from e2e.serve_helpers import APPS, Server

TEMPLATE = APPS / "auth" / "template.yaml"
ORIGIN = "https://app.example.com"
ISSUER = "https://issuer.example.com"
POOL_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Local"


def http(method, url, headers=None, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server(tmp_path_factory, key):
    folder = tmp_path_factory.mktemp("auth")
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig"}]}))
    srv = Server(folder / "state", TEMPLATE, "--jwks", str(folder / "jwks.json")).start()
    yield srv
    code, out = srv.stop()
    assert code == 0, out


def token(key, kid="k1", **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "my-api", "sub": "u1", "exp": now + 600, "iat": now, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def authorizer_calls(server, function):
    db = sqlite3.connect(server.state_dir / "warmstart.db")
    try:
        rows = db.execute("SELECT request_id FROM invocations WHERE function = ?", (function,))
        return {r[0] for r in rows}
    finally:
        db.close()


# -- CORS ---------------------------------------------------------------------------------------


def test_a_rest_api_answers_preflights_with_the_mock_sam_adds(server):
    status, headers, body = http(
        "OPTIONS",
        server.api_url + "/token/5",
        {"Origin": "https://elsewhere.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert (status, body) == (200, b"{}")  # the mock answers whoever asks
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET,OPTIONS"
    assert headers["access-control-allow-headers"] == "Content-Type,Authorization"
    assert headers["access-control-max-age"] == "600"
    # The function's responses are its own: API Gateway adds nothing with proxy integration.
    status, headers, _ = http("GET", server.api_url + "/open", {"Origin": ORIGIN})
    assert status == 200 and "access-control-allow-origin" not in headers


def test_an_http_api_answers_preflights_and_sets_cors_headers_on_responses(server):
    status, headers, body = http(
        "OPTIONS",
        server.api_url + "/h/jwt",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "authorization,content-type"
    assert headers["access-control-max-age"] == "300"
    assert headers["access-control-allow-credentials"] == "true"
    # An origin not allowed gets no CORS headers.
    status, headers, _ = http(
        "OPTIONS",
        server.api_url + "/h/jwt",
        {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert status == 204 and "access-control-allow-origin" not in headers
    # The function's own CORS headers are replaced by the API's.
    status, headers, body = http("POST", server.api_url + "/h/open", {"Origin": ORIGIN}, b"x")
    assert (status, body) == (200, b"ok")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-expose-headers"] == "x-request-id"
    assert headers["x-request-id"] == "r1"
    status, headers, _ = http("POST", server.api_url + "/h/open", {"Origin": "https://x.test"})
    assert status == 200 and "access-control-allow-origin" not in headers
    # A route that takes OPTIONS (ANY here) gets the preflight, as on AWS.
    status, headers, body = http(
        "OPTIONS",
        server.api_url + "/h/any",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert (status, body, headers["access-control-allow-origin"]) == (200, b"ok", ORIGIN)
    # Refusals of an HTTP API carry its CORS headers too, so a page can read them.
    status, headers, _ = http("GET", server.api_url + "/h/jwt", {"Origin": ORIGIN})
    assert status == 401 and headers["access-control-allow-origin"] == ORIGIN


# -- Lambda authorizers ---------------------------------------------------------------------------


def test_a_token_authorizer_allows_and_its_result_is_cached(server):
    status, _, body = http("GET", server.api_url + "/token/1", {"Authorization": "allow-ann"})
    assert status == 200, body
    authorizer = json.loads(body)["requestContext"]["authorizer"]
    first = authorizer.pop("rid")
    assert authorizer == {
        "principalId": "ann",
        "user": "ann",
        "n": "7",
        "admin": "false",
        "integrationLatency": authorizer["integrationLatency"],
    }
    assert authorizer["integrationLatency"] > 0
    # The same token within ReauthorizeEvery: the cached result, no invocation.
    status, _, body = http("GET", server.api_url + "/token/2", {"Authorization": "allow-ann"})
    assert status == 200
    again = json.loads(body)["requestContext"]["authorizer"]
    assert again["rid"] == first and again["integrationLatency"] == 0
    # Another token: invoked again (and every invocation is recorded like any other).
    status, _, body = http("GET", server.api_url + "/token/3", {"Authorization": "allow-bob"})
    other = json.loads(body)["requestContext"]["authorizer"]["rid"]
    assert other != first
    assert wait_for(lambda: other in authorizer_calls(server, "TokenAuthFn"), timeout=10)
    assert authorizer_calls(server, "TokenAuthFn") == {first, other}


def test_a_token_authorizer_refuses_as_api_gateway_does(server):
    cases = [
        ({}, 401, {"message": "Unauthorized"}, "UnauthorizedException"),
        ({"Authorization": "NOT VALID!"}, 401, {"message": "Unauthorized"}, None),
        ({"Authorization": "unauthorized"}, 401, {"message": "Unauthorized"}, None),
        (
            {"Authorization": "deny-eve"},
            403,
            {"Message": "User is not authorized to access this resource with an explicit deny"},
            "AccessDeniedException",
        ),
        ({"Authorization": "broken"}, 500, {"message": None}, "AuthorizerConfigurationException"),
        ({"Authorization": "crash"}, 500, {"message": None}, "AuthorizerConfigurationException"),
    ]
    for headers, status, body, error_type in cases:
        got, answer, data = http("GET", server.api_url + "/token/9", headers)
        assert (got, json.loads(data)) == (status, body), headers
        if error_type:
            assert answer["x-amzn-errortype"] == error_type


def test_a_cached_policy_is_evaluated_against_each_resource(server):
    status, _, _ = http("GET", server.api_url + "/token/1", {"Authorization": "narrow-n"})
    assert status == 200
    status, _, body = http("GET", server.api_url + "/token/2", {"Authorization": "narrow-n"})
    assert (status, json.loads(body)) == (
        403,
        {"Message": "User is not authorized to access this resource"},
    )


def test_a_request_authorizer_gets_the_request_and_needs_its_identity(server):
    url = server.api_url + "/request"
    status, _, body = http("GET", url + "?tenant=acme", {"X-User": "ann"})
    assert status == 200, body
    authorizer = json.loads(body)["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "ann" and authorizer["tenant"] == "acme"
    assert authorizer["seen"] == "REQUEST GET /request"
    assert http("GET", url + "?tenant=other", {"X-User": "ann"})[0] == 403
    # A missing identity source: 401, and the authorizer is not invoked.
    assert http("GET", url + "?tenant=acme")[0] == 401
    assert http("GET", url, {"X-User": "ann"})[0] == 401
    assert http("GET", url + "?tenant=", {"X-User": "ann"})[0] == 401
    status, _, body = http("GET", url + "?tenant=acme", {"X-User": "bob"})
    last = json.loads(body)["requestContext"]["authorizer"]["rid"]
    # ReauthorizeEvery: 0, so each request it saw ran it: two allowed, one denied.
    assert wait_for(lambda: last in authorizer_calls(server, "RequestAuthFn"), timeout=10)
    assert len(authorizer_calls(server, "RequestAuthFn")) == 3


def test_an_http_api_lambda_authorizer_with_simple_responses(server):
    url = server.api_url + "/h/simple"
    status, _, body = http("GET", url, {"Authorization": "secret"})
    assert status == 200, body
    event = json.loads(body)
    assert event["requestContext"]["authorizer"]["lambda"]["roles"] == ["a", "b"]
    assert event["requestContext"]["authorizer"]["lambda"]["route"] == "GET /h/simple"
    assert http("GET", url, {"Authorization": "wrong"})[0:3:2] == (403, b'{"message":"Forbidden"}')
    assert http("GET", url)[0:3:2] == (401, b'{"message":"Unauthorized"}')


def test_an_authorizer_whose_function_is_not_in_the_template_refuses(server):
    status, headers, body = http("GET", server.api_url + "/elsewhere", {"Authorization": "x"})
    assert (status, json.loads(body)) == (500, {"message": None})
    assert headers["x-amzn-errortype"] == "AuthorizerConfigurationException"


def test_aws_iam_and_api_keys_refuse_what_they_can(server):
    status, _, body = http("GET", server.api_url + "/iam")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/execute-api/"}
    assert http("GET", server.api_url + "/iam", signed)[0] == 200
    assert http("GET", server.api_url + "/h/iam")[0:3:2] == (403, b'{"message":"Forbidden"}')
    status, _, body = http("GET", server.api_url + "/keyed")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert http("GET", server.api_url + "/keyed", {"x-api-key": "k"})[0] == 200


# -- JWT and Cognito ------------------------------------------------------------------------------


def test_a_jwt_authorizer_checks_the_token_as_api_gateway_does(server, key):
    url = server.api_url + "/h/jwt"
    status, _, body = http("GET", url, {"Authorization": "Bearer " + token(key, tags=["a", "b"])})
    assert status == 200, body
    found = json.loads(body)["requestContext"]["authorizer"]["jwt"]
    assert found["claims"]["sub"] == "u1" and found["claims"]["tags"] == "[a b]"
    assert found["claims"]["exp"].isdigit() and found["scopes"] is None
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "the token has expired": token(key, exp=int(time.time()) - 60),
        "the token is not valid yet": token(key, nbf=int(time.time()) + 600),
        "the token does not have a valid audience": token(key, aud="other-api"),
        "the token does not have a valid issuer": token(key, iss="https://evil.example.com"),
        "the token's signature is invalid": token(other),
        "no key of the --jwks key sets has the token's kid": token(key, kid="k2"),
        "signing method HS256 is invalid": jwt.encode(
            {"iss": ISSUER, "aud": "my-api", "exp": int(time.time()) + 60},
            "a-shared-secret-of-32-bytes-or-more!",
            algorithm="HS256",
            headers={"kid": "k1"},
        ),
        "the token could not be decoded": "not.a.token",
    }
    for why, bad in refused.items():
        status, headers, body = http("GET", url, {"Authorization": bad})
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"}), why
        assert headers["www-authenticate"] == (
            f'Bearer scope="" error="invalid_token" error_description="{why}"'
        )
    assert http("GET", url)[0] == 401


def test_a_jwt_route_with_scopes_needs_one_of_them(server, key):
    url = server.api_url + "/h/scoped"
    status, _, body = http("GET", url, {"Authorization": token(key, scope="orders/read x")})
    assert status == 200, body
    assert json.loads(body)["requestContext"]["authorizer"]["jwt"]["scopes"] == [
        "orders/read",
        "x",
    ]
    status, headers, body = http("GET", url, {"Authorization": token(key, scope="x")})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert 'error="insufficient_scope"' in headers["www-authenticate"]


def test_a_cognito_authorizer_is_a_jwt_authorizer_of_the_pool(server, key):
    url = server.api_url + "/cognito"
    exp = int(time.time()) + 600
    id_token = token(key, iss=POOL_ISSUER, aud="client", token_use="id", email="a@b.c", exp=exp)
    status, _, body = http("GET", url, {"Authorization": id_token})
    assert status == 200, body
    claims = json.loads(body)["requestContext"]["authorizer"]["claims"]
    assert claims["email"] == "a@b.c"
    assert claims["exp"] == time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(exp))
    for bad in (
        token(key, iss=ISSUER, token_use="id"),  # another issuer
        token(key, iss=POOL_ISSUER, token_use="id", exp=int(time.time()) - 1),
        token(key, iss=POOL_ISSUER, token_use="access", scope="orders/read"),  # not an ID token
        token(other_key(), iss=POOL_ISSUER, token_use="id"),
    ):
        status, _, body = http("GET", url, {"Authorization": bad})
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    scoped = server.api_url + "/cognito/orders"
    access = token(key, iss=POOL_ISSUER, token_use="access", scope="orders/read")
    assert http("GET", scoped, {"Authorization": access})[0] == 200
    assert http("GET", scoped, {"Authorization": id_token})[0] == 401


def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- what is said at start ------------------------------------------------------------------------


def test_without_jwks_claims_are_checked_and_the_start_says_signatures_are_not(tmp_path, key):
    srv = Server(tmp_path / "state", TEMPLATE).start()
    try:
        unsigned = token(other_key())  # valid claims, a key nobody gave: let in, as said
        assert http("GET", srv.api_url + "/h/jwt", {"Authorization": unsigned})[0] == 200
        expired = token(key, exp=int(time.time()) - 60)
        assert http("GET", srv.api_url + "/h/jwt", {"Authorization": expired})[0] == 401
    finally:
        code, out = srv.stop()
    assert code == 0, out
    for line in (
        "Globals: ignored (not used locally): Api.TracingEnabled",
        "HTTP API Http: authorizer Jwt: tokens' signatures are not checked (no --jwks given)",
        "API Rest: authorizer Pool: tokens' signatures are not checked (no --jwks given)",
        "API Rest: authorizer Elsewhere: its FunctionArn",
        "API Rest: AWS_IAM: signatures are not checked against IAM locally",
        "API Rest: API keys are not checked against usage plans locally",
        "which app clients belong to the pool is only known on AWS",
    ):
        assert line in out, line


def test_bad_jwks_and_authorizer_names_are_clear_errors(tmp_path):
    (tmp_path / "bad.json").write_text('{"keys": "no"}')
    for extra, message in (
        (("--jwks", "http://example.com/jwks.json"), "only a file or a loopback URL"),
        (("--jwks", str(tmp_path / "missing.json")), "not a file, nor a loopback URL"),
        (("--jwks", str(tmp_path / "bad.json")), "not a JSON Web Key Set"),
    ):
        srv = Server(tmp_path / "state", TEMPLATE, *extra)
        with pytest.raises(RuntimeError, match=message):
            srv.start()
    broken = tmp_path / "app"
    broken.mkdir()
    (broken / "template.yaml").write_text(
        TEMPLATE.read_text().replace("Auth: {Authorizer: Pool}", "Auth: {Authorizer: Poool}")
    )
    (broken / "app.py").write_text((APPS / "auth" / "app.py").read_text())
    with pytest.raises(
        RuntimeError, match=r"Auth.Authorizer: 'Poool' is not an authorizer of Rest"
    ):
        Server(tmp_path / "state2", broken / "template.yaml").start()
