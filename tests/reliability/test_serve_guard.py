"""`warmstart serve` against web pages: cross-site requests and DNS rebinding are refused, the
hosts and origins the user allows get in (with CORS), and boto3 and the AWS CLI still work."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile

import pytest

from e2e.serve_helpers import API_TEMPLATE, Server
from warmstart.errors import WarmstartError
from warmstart.frontdoor import Guard
from warmstart.frontdoor.guard import Refusal

TOOL = "http://tool.example:5173"  # a browser tool the user allowed
EVIL = "http://evil.example"


def raw(port: int, request: bytes, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (any Host, any header), read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except OSError:  # refused before it was all sent: the answer is still there to read
            pass
        r = http.client.HTTPResponse(s)
        r.begin()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def message(
    method: str,
    path: str,
    body: bytes = b"",
    host: str | None = "127.0.0.1",
    headers: dict[str, str] | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """An HTTP request as bytes: Host and Content-Length unless told otherwise."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def records(server: Server, function: str) -> int:
    time.sleep(0.5)  # the writer flushes every 0.2 s
    db = sqlite3.connect(server.state_dir / "warmstart.db")
    try:
        return db.execute(
            "SELECT count(*) FROM invocations WHERE function = ?", (function,)
        ).fetchone()[0]
    finally:
        db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("guard"),
        API_TEMPLATE,
        "--allow-origin",
        TOOL,
        "--allow-host",
        "devbox.test",
    ).start()
    yield srv
    code, out = srv.stop()
    assert code == 0, out


@pytest.fixture(scope="module")
def client(server):
    return server.client()


def code_zip(files: dict[str, str]) -> bytes:
    """A function's code as CreateFunction takes it (files readable by all, as Lambda needs)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o644 << 16
            z.writestr(info, text)
    return buf.getvalue()


def _evil_zip(marker: str) -> str:
    """A function whose handler runs a shell command: what a hostile page would upload."""
    handler = f"import os\ndef handler(event, context):\n    os.system('touch {marker}')\n"
    return base64.b64encode(code_zip({"evil.py": handler})).decode()


# -- cross-site requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Content-Type": "text/plain"},  # fetch(..., {mode: "no-cors"})
        {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},  # a <form>
        {"Origin": "null", "Content-Type": "text/plain"},  # a sandboxed iframe, a file: page
        {"Origin": EVIL, "Content-Type": "application/json"},  # even with a JSON type
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},  # no Origin sent
        {"Sec-Fetch-Site": "same-site", "Content-Type": "multipart/form-data; boundary=x"},
        {"Content-Type": "text/plain"},  # a browser that sent neither: its type gives it away
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},  # no type at all (a Blob body)
    ],
)
def test_a_cross_site_simple_post_creates_and_runs_nothing(server, client, tmp_path, headers):
    marker = tmp_path / "pwned"
    create = json.dumps(
        {
            "FunctionName": "Evil",
            "Runtime": "python3.11",
            "Handler": "evil.handler",
            "Role": "arn:aws:iam::123456789012:role/x",
            "Code": {"ZipFile": _evil_zip(str(marker))},
        }
    ).encode()
    status, answer, _ = raw(
        server.port, message("POST", "/2015-03-31/functions", create, headers=headers)
    )
    assert status in (403, 415), status
    assert answer["x-amzn-errortype"] in ("AccessDeniedException", "UnsupportedMediaTypeException")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="Evil")
    path = "/2015-03-31/functions/Evil/invocations"
    raw(server.port, message("POST", path, b"{}", headers=headers))
    assert not marker.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Origin": TOOL + ".evil.example"},
        {"Origin": "http://tool.example:5174"},  # the allowed host on another port
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"},
    ],
)
def test_pages_from_other_origins_cannot_invoke(server, headers):
    before = records(server, "Echo")
    path = "/2015-03-31/functions/Echo/invocations"
    status, answer, body = raw(
        server.port, message("POST", path, b"{}", headers={**headers, "Content-Type": "text/plain"})
    )
    assert (status, answer["x-amzn-errortype"]) == (403, "AccessDeniedException")
    assert "--allow-origin" in json.loads(body)["message"]
    status, _, _ = raw(server.port, message("GET", "/2015-03-31/functions", headers=headers))
    assert status == 403
    assert records(server, "Echo") == before  # the function never ran


def test_an_allowed_origin_gets_cors(server):
    path = "/2015-03-31/functions/Echo/invocations"
    status, answer, body = raw(
        server.port, message("POST", path, b'{"from": "tool"}', headers={"Origin": TOOL})
    )
    assert status == 200 and json.loads(body)["event"] == {"from": "tool"}
    assert answer["access-control-allow-origin"] == TOOL
    assert "x-amzn-requestid" in answer["access-control-expose-headers"]

    asked = "authorization,content-type,x-amz-date,x-amz-invocation-type"
    status, answer, _ = raw(
        server.port,
        message(
            "OPTIONS",
            path,
            headers={
                "Origin": TOOL,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
                "Access-Control-Request-Private-Network": "true",
            },
        ),
    )
    assert status == 204
    assert answer["access-control-allow-origin"] == TOOL
    assert "POST" in answer["access-control-allow-methods"]
    assert answer["access-control-allow-headers"] == asked
    assert answer["access-control-allow-private-network"] == "true"

    status, answer, body = raw(
        server.port,
        message(
            "GET", "/2015-03-31/functions", headers={"Origin": TOOL, "Sec-Fetch-Site": "cross-site"}
        ),
    )
    assert status == 200 and answer["access-control-allow-origin"] == TOOL
    assert any(f["FunctionName"] == "Echo" for f in json.loads(body)["Functions"])
    status, answer, _ = raw(server.port, message("OPTIONS", path, headers={"Origin": EVIL}))
    assert status == 403 and "access-control-allow-origin" not in answer


def test_api_routes_keep_api_gateways_cors_semantics(server):
    """No Origin is refused on the API port: a route's own CORS answers pages (another part)."""
    status, _, body = raw(
        server.api_port,
        message("GET", "/v2/items/7", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}),
    )
    assert status == 200 and json.loads(body)["pathParameters"] == {"id": "7"}


# -- DNS rebinding --------------------------------------------------------------------------------


REBOUND = [
    "evil.example",
    "evil.example:{port}",
    "127.0.0.1.evil.example:{port}",
    "localhost.evil.example",
    "localhostevil.example",
    "0.0.0.0:{port}",  # what some browsers let public pages reach
    "192.168.1.20:{port}",
    "[::2]:{port}",
    "evil.example:{port}@127.0.0.1",
    "127.0.0.1:port",
    "",
    "x y",
    "\u00e9vil.example",
]
FINE = [
    "127.0.0.1:{port}",
    "127.0.0.2",
    "localhost:{port}",
    "LOCALHOST",
    "localhost.",
    "app.localhost:{port}",
    "[::1]:{port}",
    "[::ffff:127.0.0.1]:{port}",
    "devbox.test:{port}",
    "DevBox.Test",
]


def _host(template: str, port: int) -> str:
    return template.format(port=port)


@pytest.mark.parametrize("host", REBOUND)
def test_a_rebound_name_is_refused_on_both_ports(server, host):
    before = records(server, "Echo")
    invoke = "/2015-03-31/functions/Echo/invocations"
    for port, path, method, body in (
        (server.port, invoke, "POST", b"{}"),  # the Invoke path that skips ASGI
        (server.port, "/2015-03-31/functions/Echo", "GET", b""),
        (server.port, invoke + "?Qualifier=live", "PUT", b"{}"),  # 405 if it got that far
        (server.api_port, "/v2/items/1", "GET", b""),  # the template's code
    ):
        status, answer, text = raw(port, message(method, path, body, host=_host(host, port)))
        assert status == 403, (port, path, status, text)
        assert "--allow-host" in json.loads(text)["message"]
        assert answer["connection"] == "close"
    assert records(server, "Echo") == before


@pytest.mark.parametrize("host", FINE)
def test_loopback_names_and_allowed_hosts_are_answered(server, host):
    status, _, body = raw(
        server.port,
        message(
            "POST",
            "/2015-03-31/functions/Echo/invocations",
            b'{"n": 1}',
            host=_host(host, server.port),
        ),
    )
    assert status == 200 and json.loads(body)["event"] == {"n": 1}
    status, _, _ = raw(
        server.api_port, message("GET", "/v2/items/1", host=_host(host, server.api_port))
    )
    assert status == 200


def test_a_request_needs_one_host(server):
    invoke = "/2015-03-31/functions/Echo/invocations"
    for port, path, method in (
        (server.port, invoke, "POST"),
        (server.port, "/2015-03-31/functions", "GET"),
        (server.api_port, "/v2/items/1", "GET"),
    ):
        status, _, _ = raw(
            port, message(method, path, b"{}" if method == "POST" else b"", host=None)
        )
        assert status == 400, (port, path)
        twice = message(
            method, path, b"{}" if method == "POST" else b"", headers={"Host": "evil.example"}
        )
        status, _, _ = raw(port, twice)
        assert status == 400, (port, path)
        # HTTP/1.0 has no Host to send
        status, _, _ = raw(
            port,
            message(
                method, path, b"{}" if method == "POST" else b"", host=None, version="HTTP/1.0"
            ),
        )
        assert status == 200, (port, path)


# -- what the AWS clients send --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x-amz-json-1.1",
        "application/x-amz-json-1.0",
    ],
)
def test_management_calls_take_awss_json_types(server, content_type):
    status, _, body = raw(
        server.port,
        message(
            "PUT",
            "/2017-10-31/functions/Raiser/concurrency",
            b'{"ReservedConcurrentExecutions": 5}',
            headers={"Content-Type": content_type},
        ),
    )
    assert status == 200, body


def test_boto3_manages_and_invokes_through_the_guard(server, client, tmp_path):
    code = code_zip({"ok.py": "def handler(event, context):\n    return {'ok': event}\n"})
    client.create_function(
        FunctionName="Made",
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/x",
        Handler="ok.handler",
        Code={"ZipFile": code},
    )
    try:
        client.update_function_configuration(FunctionName="Made", MemorySize=256)
        client.publish_version(FunctionName="Made")
        res = client.invoke(FunctionName="Made", Payload=b'{"k": 1}')
        assert json.loads(res["Payload"].read()) == {"ok": {"k": 1}}
        res = client.invoke(FunctionName="Made", InvocationType="Event", Payload=b"{}")
        assert res["StatusCode"] == 202
        client.invoke_async(FunctionName="Made", InvokeArgs=b"{}")  # an untyped legacy body
    finally:
        client.delete_function(FunctionName="Made")


def test_the_aws_cli_manages_and_invokes_through_the_guard(server, tmp_path):
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    common = ["--endpoint-url", server.lambda_url, "--region", "us-east-1", "--output", "json"]

    def cli(*args: str) -> dict:
        p = subprocess.run(
            [aws, "lambda", *common, *args], capture_output=True, text=True, timeout=60, env=env
        )
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout or "{}")

    config = cli("update-function-configuration", "--function-name", "Shapes", "--timeout", "4")
    assert config["Timeout"] == 4
    cli(
        "put-function-concurrency",
        "--function-name",
        "Shapes",
        "--reserved-concurrent-executions",
        "3",
    )
    out = tmp_path / "out.json"
    result = cli("invoke", "--function-name", "Echo", "--payload", '{"cli": 1}', str(out))
    assert result["StatusCode"] == 200
    assert json.loads(out.read_text())["event"] == {"cli": 1}


# -- the rules, as a library -----------------------------------------------------------------------


def test_guard_rules():
    guard = Guard(["devbox.test", "10.1.2.3", "[fd00::1]"], [TOOL, "null"], bound="192.168.5.5")
    for host in (
        b"127.0.0.1:1",
        b"127.9.9.9",
        b"[::1]",
        b"localhost",
        b"a.b.localhost:9",
        b"devbox.test.",
        b"10.1.2.3:80",
        b"[fd00::1]:3000",
        b"192.168.5.5:3001",
    ):
        assert guard.check(host, 1, None, None) is None, host
    for host in (
        b"192.168.5.6",
        b"evil.example",
        b"[fd00::2]",
        b"10.1.2.3.evil.example",
        b"[::1",
        b"::1",
        b"devbox.test:x",
        b"\xff",
    ):
        assert isinstance(guard.check(host, 1, None, None), Refusal), host
    assert isinstance(guard.check(b"localhost", 1, TOOL.encode(), None), list)
    assert isinstance(guard.check(b"localhost", 1, b"null", None), list)  # the user said so
    assert isinstance(guard.check(b"localhost", 1, EVIL.encode(), None), Refusal)
    assert isinstance(guard.check(b"localhost", 1, None, b"cross-site"), Refusal)
    assert guard.check(b"localhost", 1, None, b"same-origin") is None
    assert guard.check(b"localhost", 1, None, b"none") is None  # typed in the address bar
    assert guard.check(None, 0, None, None, http_10=True) is None
    assert guard.check(b"localhost", 2, None, None).status == 400
    wildcard = Guard(bound="0.0.0.0")
    assert wildcard.check(b"203.0.113.7:3001", 1, None, None) is None  # any address, no name
    assert isinstance(wildcard.check(b"evil.example", 1, None, None), Refusal)
    anything = Guard(["*"], ["*"])
    assert anything.check(b"evil.example", 1, EVIL.encode(), b"cross-site") == anything.cors(
        EVIL.encode()
    )


@pytest.mark.parametrize(
    ("hosts", "origins"),
    [
        (["devbox:3001"], []),
        (["evil example"], []),
        ([""], []),
        ([], ["localhost:5173"]),
        ([], ["http://localhost:5173/app"]),
        ([], ["http://"]),
        ([], [""]),
    ],
)
def test_bad_allow_values_are_clear_errors(hosts, origins, tmp_path):
    with pytest.raises(WarmstartError):
        Guard(hosts, origins)
    args = [a for h in hosts for a in ("--allow-host", h)] + [
        a for o in origins for a in ("--allow-origin", o)
    ]
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "warmstart.cli",
            "serve",
            str(API_TEMPLATE),
            "--state-dir",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WARMSTART_PYTHON": sys.executable},
    )
    assert p.returncode == 2 and "--allow-" in p.stderr and "Traceback" not in p.stderr
