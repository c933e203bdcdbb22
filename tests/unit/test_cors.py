"""CORS as API Gateway does it: SAM's `Cors` (REST APIs: an OPTIONS mock per path) and an HTTP
API's `CorsConfiguration` (preflights answered, headers set on every response), read from
templates with their Globals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from warmstart import TemplateError, load_template
from warmstart.frontdoor.apigw import Route, routes
from warmstart.frontdoor.cors import HttpCors, RestCors, http_cors, rest_cors


def template(tmp_path: Path, body: str) -> list[Route]:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    t = load_template(path)
    return routes(list(t.functions.values()), t.resources, t.api_globals)


def headers(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in pairs}


# -- REST APIs ----------------------------------------------------------------------------------


def test_rest_cors_is_the_headers_of_sams_mock():
    assert rest_cors("'*'", "X") == RestCors("*")
    cors = rest_cors(
        {
            "AllowOrigin": "'https://a.test'",
            "AllowHeaders": "'Content-Type'",
            "MaxAge": "'600'",
            "AllowCredentials": True,
        },
        "X",
    )
    assert cors is not None
    assert headers(cors.preflight({"GET", "POST"})) == {
        "access-control-allow-origin": "https://a.test",
        "access-control-allow-methods": "GET,OPTIONS,POST",
        "access-control-allow-headers": "Content-Type",
        "access-control-max-age": "600",
        "access-control-allow-credentials": "true",
    }
    everything = headers(RestCors("*").preflight({"ANY"}))
    assert everything["access-control-allow-methods"] == "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    given = RestCors("*", allow_methods="GET").preflight({"ANY"})
    assert headers(given)["access-control-allow-methods"] == "GET"
    assert "access-control-allow-headers" not in headers(given)
    assert rest_cors(None, "X") is None


@pytest.mark.parametrize(
    "value, message",
    [
        ("*", "must be a value in single quotes"),
        ("'a\r\nb'", "must be a value in single quotes"),
        (["'*'"], "must be a value in single quotes"),
        ({"AllowOrigins": "'*'"}, "'AllowOrigins' is not a property of Cors"),
        ({"AllowOrigin": "'*'", "AllowCredentials": True}, "AllowCredentials cannot be true"),
        ({"AllowCredentials": True}, "AllowCredentials cannot be true"),
        ({"AllowOrigin": "'a'", "AllowCredentials": "yes"}, "must be true or false"),
        ({"AllowOrigin": "'a'", "MaxAge": "soon"}, "must be a number of seconds"),
        ({"AllowOrigin": "'a'", "AllowHeaders": "Content-Type"}, "single quotes"),
    ],
)
def test_rest_cors_refuses_what_sam_or_api_gateway_would(value, message):
    with pytest.raises(TemplateError, match=message):
        rest_cors(value, "Resources.Api.Properties.Cors")


def test_globals_api_cors_gives_each_rest_path_an_options_route(tmp_path):
    table = template(
        tmp_path,
        """
        Globals:
          Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
          Api:
            Cors: "'https://app.test'"
            MethodSettings: [{LoggingLevel: INFO}]
        Resources:
          Explicit:
            Type: AWS::Serverless::Api
            Properties:
              StageName: dev
              Cors: {AllowOrigin: "'https://other.test'", AllowMethods: "'GET'"}
          F:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Get: {Type: Api, Properties: {Path: /items, Method: get}}
                Post: {Type: Api, Properties: {Path: /items/, Method: post}}
                Own: {Type: Api, Properties: {Path: /own, Method: options}}
                Mine: {Type: Api, Properties: {RestApiId: !Ref Explicit, Path: /x, Method: any}}
                Http: {Type: HttpApi, Properties: {Path: /h, Method: get}}
        """,
    )
    mocks = {(r.api_id, r.path): r for r in table if not r.function}
    assert set(mocks) == {("ServerlessRestApi", "/items"), ("Explicit", "/x")}
    implicit = mocks["ServerlessRestApi", "/items"].access
    assert implicit is not None and implicit.gate is None
    assert headers(implicit.preflight or []) == {
        "access-control-allow-origin": "https://app.test",
        "access-control-allow-methods": "GET,OPTIONS,POST",
    }
    explicit = headers(mocks["Explicit", "/x"].access.preflight or [])  # type: ignore[union-attr]
    assert explicit["access-control-allow-origin"] == "https://other.test"
    # The mock is an OPTIONS route: it answers before an ANY route of the same path would.
    assert [r.method for r in table if r.path == "/x"] == ["OPTIONS", "ANY"]


def test_globals_api_keys_not_used_locally_are_still_said(tmp_path):
    (tmp_path / "src").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            """
            Parameters:
              Origin: {Type: String, Default: "'https://p.test'"}
            Globals:
              Api: {Cors: !Ref Origin, TracingEnabled: true}
              HttpApi: {CorsConfiguration: true, StageVariables: {a: b}}
            Resources:
              F:
                Type: AWS::Serverless::Function
                Properties: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
            """
        )
    )
    t = load_template(path)
    assert t.api_globals == {
        "Api": {"Cors": "'https://p.test'"},
        "HttpApi": {"CorsConfiguration": True},
    }
    assert "Globals: ignored (not used locally): Api.TracingEnabled" in t.warnings
    assert "Globals: ignored (not used locally): HttpApi.StageVariables" in t.warnings
    assert not any(w.endswith(": Api") or "Api.Cors" in w for w in t.warnings)


def test_the_preflight_mock_gets_the_default_authorizer_unless_told_not_to(tmp_path):
    body = """
        Globals:
          Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
        Resources:
          Api:
            Type: AWS::Serverless::Api
            Properties:
              StageName: dev
              Cors: "'*'"
              Auth:
                DefaultAuthorizer: Tok
                AddDefaultAuthorizerToCorsPreflight: FLAG
                Authorizers: {Tok: {FunctionArn: !GetAtt F.Arn}}
          F:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /a, Method: get}}
        """
    for flag, gated in (("true", True), ("false", False)):
        table = template(tmp_path, body.replace("FLAG", flag))
        mock = next(r for r in table if r.method == "OPTIONS")
        assert mock.access is not None and (mock.access.gate is not None) is gated


# -- HTTP APIs ----------------------------------------------------------------------------------


def test_http_cors_allows_origins_as_api_gateway_matches_them():
    anyone = http_cors(True, "X")
    assert anyone == HttpCors(("*",))
    assert anyone.allowed("https://a.test") == "*" and anyone.allowed(None) is None
    cors = http_cors(
        {
            "AllowOrigins": ["https://A.test", "http://*"],
            "AllowCredentials": True,
            "AllowMethods": ["get", "POST"],
            "AllowHeaders": ["Authorization"],
            "ExposeHeaders": ["X-Id"],
            "MaxAge": 0,
        },
        "X",
    )
    assert cors is not None
    assert cors.allowed("https://a.test") == "https://a.test"
    assert cors.allowed("http://anything.test:8080") == "http://anything.test:8080"
    assert cors.allowed("https://b.test") is None
    assert headers(cors.preflight("https://a.test")) == {
        "access-control-allow-origin": "https://a.test",
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "authorization",
        "access-control-max-age": "0",
        "access-control-allow-credentials": "true",
    }
    assert cors.preflight("https://b.test") == []
    # The function's CORS headers are ignored; the API's are set for an origin it allows.
    given = [(b"content-type", b"text/plain"), (b"access-control-allow-origin", b"*")]
    assert headers(cors.apply("https://a.test", given)) == {
        "content-type": "text/plain",
        "access-control-allow-origin": "https://a.test",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-id",
    }
    assert cors.apply("https://b.test", given) == [(b"content-type", b"text/plain")]
    assert http_cors(None, "X") is None and http_cors(False, "X") is None


@pytest.mark.parametrize(
    "value, message",
    [
        ("*", "must be true or a map"),
        ({"AllowOrigin": ["*"]}, "'AllowOrigin' is not a property of CorsConfiguration"),
        ({"AllowOrigins": "*"}, "must be a list of texts"),
        ({"AllowOrigins": ["*"], "AllowCredentials": True}, "AllowCredentials cannot be true"),
        ({"AllowOrigins": ["a"], "MaxAge": 86401}, "from -1 to 86400"),
        ({"AllowOrigins": ["a"], "MaxAge": [1]}, "from -1 to 86400"),
        ({"AllowOrigins": ["a b"]}, "must be an origin, a header or a method name"),
        ({"AllowHeaders": ["x\r\nSet-Cookie: a=b"]}, "must be an origin, a header"),
        ({"AllowOrigins": [{"a": 1}]}, "must be an origin"),
    ],
)
def test_http_cors_refuses_what_api_gateway_would(value, message):
    with pytest.raises(TemplateError, match=message):
        http_cors(value, "Resources.H.Properties.CorsConfiguration")


def test_an_http_api_with_cors_marks_its_routes_and_only_them(tmp_path):
    table = template(
        tmp_path,
        """
        Globals:
          Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
          HttpApi: {CorsConfiguration: {AllowOrigins: ["https://g.test"]}}
        Resources:
          Plain:
            Type: AWS::Serverless::HttpApi
            Properties: {CorsConfiguration: false}
          F:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Implicit: {Type: HttpApi, Properties: {Path: /a, Method: get}}
                Explicit: {Type: HttpApi, Properties: {ApiId: !Ref Plain, Path: /b, Method: get}}
                Rest: {Type: Api, Properties: {Path: /c, Method: get}}
        """,
    )
    by_path = {r.path: r for r in table}
    implicit = by_path["/a"].access
    assert implicit is not None and implicit.cors == HttpCors(("https://g.test",))
    assert by_path["/b"].access is None  # its own `false` wins over Globals
    assert by_path["/c"].access is None  # Globals.HttpApi is not the REST API's
    assert len(table) == 3


def test_template_errors_name_where_they_are(tmp_path):
    with pytest.raises(TemplateError, match=r"Globals.HttpApi.CorsConfiguration.AllowOrigins"):
        template(
            tmp_path,
            """
            Globals:
              HttpApi: {CorsConfiguration: {AllowOrigins: yes}}
            Resources:
              F:
                Type: AWS::Serverless::Function
                Properties:
                  Runtime: python3.12
                  CodeUri: src/
                  Handler: app.handler
                  Events: {H: {Type: HttpApi, Properties: {Path: /a, Method: get}}}
            """,
        )
