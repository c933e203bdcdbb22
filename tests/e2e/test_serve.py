"""`warmstart serve` with the clients users point at it: boto3, the AWS CLI, plain HTTP."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from conftest import process_gone, wait_for
from e2e.serve_helpers import API_TEMPLATE, Server, descendants


@pytest.fixture(scope="module")
def client(server):
    return server.client()


def records(server, request_id):
    db = sqlite3.connect(server.state_dir / "warmstart.db")
    return db.execute(
        "SELECT status, start_kind FROM invocations WHERE request_id = ?", (request_id,)
    ).fetchall()


# -- Invoke ------------------------------------------------------------------------------------


def test_invoke(client):
    res = client.invoke(FunctionName="Echo", Payload=json.dumps({"k": "v"}))
    assert res["StatusCode"] == 200 and "FunctionError" not in res
    assert res["ExecutedVersion"] == "$LATEST"
    body = json.loads(res["Payload"].read())
    assert body["event"] == {"k": "v"}
    assert body["context"]["aws_request_id"] == res["ResponseMetadata"]["RequestId"]


def test_invoke_with_log_tail(client):
    res = client.invoke(FunctionName="Raiser", Payload=b'{"id": 5}', LogType="Tail")
    assert res["FunctionError"] == "Unhandled"
    assert json.loads(res["Payload"].read())["errorType"] == "OrderError"
    log = base64.b64decode(res["LogResult"]).decode()
    assert "[ERROR] OrderError: bad order 5" in log and "REPORT RequestId: " in log


def test_qualifiers_and_arns(client):
    for name, qualifier in (
        ("Echo", "live"),
        ("Echo", "1"),
        ("Echo:live", None),
        ("arn:aws:lambda:us-east-1:123456789012:function:Echo", "live"),
        ("123456789012:function:Echo:live", None),
    ):
        kwargs = {"Qualifier": qualifier} if qualifier else {}
        res = client.invoke(FunctionName=name, Payload=b"{}", **kwargs)
        assert res["ExecutedVersion"] == "1", name


def test_client_context(client):
    cc = base64.b64encode(json.dumps({"custom": {"user": "u1"}, "env": {"os": "x"}}).encode())
    res = client.invoke(FunctionName="Echo", Payload=b"{}", ClientContext=cc.decode())
    assert json.loads(res["Payload"].read())["context"]["client_context"]["custom"] == {
        "user": "u1"
    }


def test_dry_run_and_event(client, server):
    assert client.invoke(FunctionName="Echo", InvocationType="DryRun")["StatusCode"] == 204
    res = client.invoke(FunctionName="Echo", InvocationType="Event", Payload=b'{"async": 1}')
    assert res["StatusCode"] == 202
    rid = res["ResponseMetadata"]["RequestId"]
    assert wait_for(
        lambda: (
            records(server, rid) == [("success", "cold")]
            or records(server, rid) == [("success", "warm")]
        ),
        timeout=15,
    )


def test_errors_are_the_modeled_exceptions(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="Nope")
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="Echo", Payload=b"{not json")
    with pytest.raises(client.exceptions.RequestTooLargeException):
        client.invoke(FunctionName="Echo", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    with pytest.raises(client.exceptions.RequestTooLargeException):
        client.invoke(
            FunctionName="Echo", InvocationType="Event", Payload=b'"' + b"x" * (1024 * 1024) + b'"'
        )
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_provisioned_concurrency_config(
            FunctionName="Echo", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="Echo", Qualifier="nope")


def test_throttles(server):
    errors, done = [], []

    def call():
        c = server.client()
        try:
            done.append(c.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 1}'))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 1 and len(errors) == 1
    err = errors[0]
    assert err.response["Error"]["Code"] == "TooManyRequestsException"
    assert err.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 429


# -- management --------------------------------------------------------------------------------


def test_functions_and_configuration(client):
    names = {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert names == {"Echo", "WebEcho", "Shapes", "Raiser", "Sleeper"}
    page = client.list_functions(MaxItems=2)
    assert len(page["Functions"]) == 2 and page["NextMarker"]
    fn = client.get_function(FunctionName="Sleeper")
    assert fn["Configuration"]["Timeout"] == 30 and fn["Concurrency"] == {
        "ReservedConcurrentExecutions": 1
    }
    conf = client.get_function_configuration(FunctionName="Echo", Qualifier="live")
    assert (conf["Version"], conf["MemorySize"], conf["Handler"]) == ("1", 256, "echo.handler")
    assert conf["FunctionArn"].endswith(":function:Echo:1") and conf["State"] == "Active"


def test_update_configuration_replaces_environments(client):
    client.invoke(FunctionName="WebEcho", Payload=b'{"rawPath": "/"}')
    conf = client.update_function_configuration(
        FunctionName="WebEcho", MemorySize=512, Timeout=7, Environment={"Variables": {"MODE": "x"}}
    )
    assert (conf["MemorySize"], conf["Timeout"], conf["Environment"]["Variables"]) == (
        512,
        7,
        {"MODE": "x"},
    )
    res = client.invoke(FunctionName="WebEcho", Payload=b"{}", LogType="Tail")
    assert "Init Duration" in base64.b64decode(res["LogResult"]).decode()  # a cold start
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.update_function_configuration(FunctionName="WebEcho", Timeout=901)


def test_versions_and_aliases(client):
    version = client.publish_version(FunctionName="Raiser")
    assert version["Version"] == "1"
    alias = client.create_alias(FunctionName="Raiser", Name="prod", FunctionVersion="1")
    assert alias["AliasArn"].endswith(":function:Raiser:prod")
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.create_alias(FunctionName="Raiser", Name="prod", FunctionVersion="1")
    client.publish_version(FunctionName="Raiser")
    assert (
        client.update_alias(FunctionName="Raiser", Name="prod", FunctionVersion="2")[
            "FunctionVersion"
        ]
        == "2"
    )
    assert client.get_alias(FunctionName="Raiser", Name="prod")["FunctionVersion"] == "2"
    assert [a["Name"] for a in client.list_aliases(FunctionName="Raiser")["Aliases"]] == ["prod"]
    res = client.invoke(FunctionName="Raiser", Qualifier="prod", Payload=b"{}")
    assert res["ExecutedVersion"] == "2"


def test_concurrency_calls(client):
    assert (
        client.get_function_concurrency(FunctionName="Shapes").get("ReservedConcurrentExecutions")
        is None
    )
    assert (
        client.put_function_concurrency(FunctionName="Shapes", ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"
        ]
        == 0
    )
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName="Shapes", Payload=b"{}")
    client.delete_function_concurrency(FunctionName="Shapes")
    assert (
        client.get_function_concurrency(FunctionName="Shapes").get("ReservedConcurrentExecutions")
        is None
    )
    settings = client.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountUsage"]["FunctionCount"] >= 5


def test_provisioned_concurrency(client):
    with pytest.raises(client.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        client.get_provisioned_concurrency_config(FunctionName="Echo", Qualifier="live")
    put = client.put_provisioned_concurrency_config(
        FunctionName="Echo", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    assert wait_for(
        lambda: (
            client.get_provisioned_concurrency_config(FunctionName="Echo", Qualifier="live")[
                "Status"
            ]
            == "READY"
        ),
        timeout=20,
    )
    got = client.get_provisioned_concurrency_config(FunctionName="Echo", Qualifier="live")
    assert got["AllocatedProvisionedConcurrentExecutions"] == 2
    res = client.invoke(FunctionName="Echo", Qualifier="live", Payload=b"{}")
    env = json.loads(res["Payload"].read())["env"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"


def _zip(files: dict[str, str], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o644 << 16  # readable by all, as Lambda needs
            zf.writestr(info, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def test_create_invoke_delete(client, server):
    code = _zip({"index.py": "def handler(event, context):\n    return {'made': event['x']}\n"})
    conf = client.create_function(
        FunctionName="Made",
        Runtime=f"python{sys.version_info[0]}.{sys.version_info[1]}",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="index.handler",
        Code={"ZipFile": code},
        MemorySize=256,
    )
    assert conf["FunctionName"] == "Made" and conf["CodeSize"] > 0
    res = client.invoke(FunctionName="Made", Payload=b'{"x": 42}')
    assert json.loads(res["Payload"].read()) == {"made": 42}
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.create_function(
            FunctionName="Made",
            Runtime="python3.11",
            Role="arn:aws:iam::123456789012:role/r",
            Handler="index.handler",
            Code={"ZipFile": code},
        )
    client.delete_function(FunctionName="Made")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="Made")
    made = server.state_dir / "functions" / "Made"
    assert wait_for(lambda: not any(made.glob("*/index.py")), 10)  # once nothing can run it


@pytest.mark.parametrize(
    "files, links",
    [
        ({"../evil.py": "x = 1"}, None),
        ({"/abs/evil.py": "x = 1"}, None),
        ({"ok.py": "x = 1", "pkg/../../evil.py": "x = 1"}, None),
        ({"ok.py": "x = 1"}, {"link": "../../outside"}),
        ({"ok.py": "x = 1"}, {"link": "/etc/passwd"}),
    ],
)
def test_unsafe_zips_are_refused_and_nothing_written(client, server, files, links):
    code_root = server.state_dir / "functions"
    before = sorted(code_root.rglob("*")) if code_root.exists() else []
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.create_function(
            FunctionName="Evil",
            Runtime="python3.11",
            Role="arn:aws:iam::123456789012:role/r",
            Handler="ok.handler",
            Code={"ZipFile": _zip(files, links)},
        )
    after = sorted(code_root.rglob("*")) if code_root.exists() else []
    assert after == before
    assert not (server.state_dir.parent / "evil.py").exists()
    assert not (server.state_dir / "evil.py").exists()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="Evil")


def test_metrics(client, server):
    client.invoke(FunctionName="Echo", Payload=b"{}")
    client.invoke(FunctionName="Raiser", Payload=b"{}")

    def scrape():
        return urllib.request.urlopen(server.lambda_url + "/metrics").read().decode()

    assert wait_for(
        lambda: 'warmstart_errors_total{error_type="OrderError",function="Raiser"}' in scrape(),
        timeout=10,
    )
    text = scrape()
    for name in (
        "warmstart_invocations_total",
        "warmstart_cold_starts_total",
        "warmstart_duration_seconds_bucket",
        "warmstart_throttles_total",
        "warmstart_concurrent_executions",
        "warmstart_environments",
        "warmstart_provisioned_environments",
    ):
        assert name in text, name


def test_aws_cli(server, tmp_path):
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = tmp_path / "out.json"
    p = subprocess.run(
        [
            aws,
            "lambda",
            "invoke",
            "--endpoint-url",
            server.lambda_url,
            "--region",
            "us-east-1",
            "--function-name",
            "Echo",
            "--payload",
            '{"from": "cli"}',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text())["event"] == {"from": "cli"}


# -- API Gateway --------------------------------------------------------------------------------


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.headers.get_all("set-cookie") or [], r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), [], e.read()


def test_rest_api_event(server):
    status, _headers, _, body = http(
        "POST",
        server.api_url + "/v1/items/7?tag=a&tag=b&one=1",
        b'{"name": "x"}',
        {"Content-Type": "application/json", "X-Custom": "c"},
    )
    assert status == 200
    event = json.loads(body)
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/v1/items/{id}",
        "/v1/items/7",
        "POST",
    )
    assert event["pathParameters"] == {"id": "7"}
    assert event["queryStringParameters"] == {"tag": "b", "one": "1"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "one": ["1"]}
    assert event["headers"]["x-custom"] == "c" and event["multiValueHeaders"]["x-custom"] == ["c"]
    assert event["body"] == '{"name": "x"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert (ctx["stage"], ctx["resourcePath"], ctx["path"]) == (
        "dev",
        "/v1/items/{id}",
        "/dev/v1/items/7",
    )
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"


def test_http_api_event(server):
    status, _, _, body = http(
        "GET",
        server.api_url + "/v2/items/9?a=1&a=2",
        headers={"Cookie": "c1=x; c2=y", "X-Two": "q"},
    )
    assert status == 200
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /v2/items/{id}"
    assert (event["rawPath"], event["rawQueryString"]) == ("/v2/items/9", "a=1&a=2")
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["cookies"] == ["c1=x", "c2=y"] and "cookie" not in event["headers"]
    assert event["pathParameters"] == {"id": "9"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["stage"] == "$default"


def test_greedy_paths_and_binary_bodies(server):
    _status, _, _, body = http(
        "PUT",
        server.api_url + "/v2/files/a/b/c.bin",
        b"\x00\xffbinary",
        {"Content-Type": "application/octet-stream"},
    )
    event = json.loads(body)
    assert event["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\xffbinary"


def test_responses(server):
    status, headers, _, body = http("GET", server.api_url + "/h/shapes/plain")
    assert (status, json.loads(body), headers["content-type"]) == (
        200,
        {"hello": "world"},
        "application/json",
    )
    status, _, _, body = http("GET", server.api_url + "/h/shapes/text")
    assert (status, body) == (200, b"just text")
    status, headers, _, body = http("GET", server.api_url + "/shapes/binary")
    assert (status, body, headers["content-type"]) == (200, b"\x89PNG\x00\x01", "image/png")
    status, headers, cookies, body = http("GET", server.api_url + "/h/shapes/cookies")
    assert (status, body, cookies) == (201, b"made", ["a=1; Path=/", "b=2"])
    status, _, _, body = http("GET", server.api_url + "/shapes/bad")  # not a valid response
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    status, _, _, body = http("GET", server.api_url + "/shapes/raise")  # a function error
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    status, _, _, body = http("GET", server.api_url + "/no/such/route")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    status, _, _, _ = http("DELETE", server.api_url + "/v2/items/1")  # route exists, not for DELETE
    assert status == 404


def test_api_throttle(server):
    results = []

    def call():
        results.append(http("GET", server.api_url + "/slow")[0])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 429]


# -- robustness ---------------------------------------------------------------------------------


def test_a_client_that_hangs_up_does_not_wedge_an_environment(server, client):
    db = server.state_dir / "warmstart.db"

    def sleeper_records():
        return (
            sqlite3.connect(db)
            .execute(
                "SELECT count(*) FROM invocations WHERE function = 'Sleeper' AND duration_ms >= 1000"
            )
            .fetchone()[0]
        )

    time.sleep(0.5)  # records of earlier tests reach the database (written every 0.2 s)
    before = sleeper_records()
    request = (
        b"POST /2015-03-31/functions/Sleeper/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 16\r\n\r\n{"seconds": 1.0}'
    )
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(request)
        time.sleep(0.2)  # hang up mid-invoke
    assert wait_for(lambda: sleeper_records() == before + 1, timeout=10)  # completed, recorded
    res = client.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 0}')
    assert res["StatusCode"] == 200  # its concurrency slot and environment came back


def _responses(sock: socket.socket, count: int) -> list[tuple[bytes, dict[str, str], bytes]]:
    """Read `count` HTTP responses (status line, headers, body) from a raw connection."""
    buf = b""

    def until(sep: bytes) -> bytes:
        nonlocal buf
        while sep not in buf:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-response"
            buf += chunk
        part, _, buf = buf.partition(sep)
        return part

    def take(size: int) -> bytes:
        nonlocal buf
        while len(buf) < size:
            buf += sock.recv(65536)
        part, buf = buf[:size], buf[size:]
        return part

    out = []
    for _ in range(count):
        status, *lines = until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines)}
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(until(b"\r\n"), 16):
                body += take(size + 2)[:-2]
            take(2)
        else:
            body = take(int(headers.get("content-length", 0)))
        out.append((status.encode(), headers, body))
    return out


def _invoke_request(name: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        + extra
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_invoke_over_raw_http(server):
    """Invoke skips ASGI in `serve`: pipelining, 100-continue, chunked bodies, HTTP/1.0 and
    413 still behave as HTTP says, and answers keep their order among other calls."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(  # three requests in one write, a management call between two invokes
            _invoke_request("Echo", b'{"n": 1}')
            + b"GET /2015-03-31/functions/Echo/configuration HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            + _invoke_request("Echo", b'{"n": 2}')
        )
        first, config, second = _responses(s, 3)
        assert json.loads(first[2])["event"] == {"n": 1}
        assert json.loads(config[2])["FunctionName"] == "Echo"
        assert json.loads(second[2])["event"] == {"n": 2}
        assert first[1]["x-amzn-requestid"] != second[1]["x-amzn-requestid"]

        s.sendall(_invoke_request("Echo", b'{"n": 3}', b"Expect: 100-continue\r\n")[:-8])
        assert s.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body is sent
        s.sendall(b'{"n": 3}')
        [(status, _, body)] = _responses(s, 1)
        assert status == b"HTTP/1.1 200 OK" and json.loads(body)["event"] == {"n": 3}

        s.sendall(
            b"POST /2015-03-31/functions/Echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"n"\r\n4\r\n: 4}\r\n0\r\n\r\n'
        )
        [(_, _, body)] = _responses(s, 1)
        assert json.loads(body)["event"] == {"n": 4}

        big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
        s.sendall(_invoke_request("Echo", big))
        [(status, headers, body)] = _responses(s, 1)
        assert status.startswith(b"HTTP/1.1 413")
        assert headers["x-amzn-errortype"] == "RequestTooLargeException"
        s.sendall(_invoke_request("Echo", b'{"n": 5}'))  # the connection is still usable
        assert json.loads(_responses(s, 1)[0][2])["event"] == {"n": 5}

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(_invoke_request("Echo", b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        [(_, headers, _)] = _responses(s, 1)
        assert headers["connection"] == "close"
        assert s.recv(1) == b""  # and it is closed


def test_events_command_lists_failed_events(server, client):
    res = client.invoke(FunctionName="Raiser", InvocationType="Event", Payload=b'{"id": 77}')
    rid = res["ResponseMetadata"]["RequestId"]

    def listed():
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "warmstart.cli",
                "events",
                "--json",
                "--state-dir",
                str(server.state_dir),
            ],
            capture_output=True,
            text=True,
        )
        return [e for e in json.loads(p.stdout or "[]") if e["id"] == rid]

    assert wait_for(listed, timeout=20)
    [event] = listed()
    assert (event["status"], event["error_type"], event["attempts"]) == ("failed", "OrderError", 2)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "warmstart.cli",
            "events",
            "--redrive",
            rid,
            "--state-dir",
            str(server.state_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert "1 event(s) queued again" in p.stdout


def test_function_names_are_validated(server):
    status, _headers, _, body = http(
        "POST", server.lambda_url + "/2015-03-31/functions/bad%20name/invocations", b"{}"
    )
    assert status == 400 and json.loads(body)["Type"] == "User"


# -- lifecycle ----------------------------------------------------------------------------------


def test_clean_shutdown_finishes_in_flight_work(tmp_path):
    srv = Server(tmp_path / "state").start()
    client = srv.client()
    client.invoke(FunctionName="Echo", Payload=b"{}")  # a frozen idle environment
    result = {}

    def slow():
        result["res"] = client.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 1.5}')

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    pids = descendants(srv.proc.pid)
    assert len(pids) >= 3  # a zygote and two environments
    code, out = srv.stop(signal.SIGTERM)
    t.join()
    assert code == 0, out
    assert result["res"]["StatusCode"] == 200  # the in-flight invocation finished
    assert all(wait_for(lambda p=p: process_gone(p), 5) for p in pids)


def test_events_accepted_before_a_crash_run_after_a_restart(tmp_path):
    state = tmp_path / "state"
    srv = Server(state).start()
    client = srv.client()
    ids = [
        client.invoke(FunctionName="Sleeper", InvocationType="Event", Payload=b'{"seconds": 2}')[
            "ResponseMetadata"
        ]["RequestId"]
        for _ in range(3)
    ]
    pids = descendants(srv.proc.pid)
    srv.stop(signal.SIGKILL)  # a crash: nothing shuts down cleanly
    assert all(wait_for(lambda p=p: process_gone(p), 10) for p in pids)
    srv2 = Server(state).start()
    try:

        def done():
            db = sqlite3.connect(state / "warmstart.db")
            ok = db.execute(
                f"SELECT count(DISTINCT request_id) FROM invocations WHERE status = 'success' "
                f"AND request_id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchone()[0]
            return ok == len(ids)

        assert wait_for(done, timeout=60)
    finally:
        code, out = srv2.stop()
    assert code == 0, out


def test_binding_beyond_loopback_needs_credentials(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "warmstart.cli",
            "serve",
            str(API_TEMPLATE),
            "--host",
            "0.0.0.0",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WARMSTART_PYTHON": sys.executable},
    )
    assert p.returncode == 2 and "needs credentials" in p.stderr and "Traceback" not in p.stderr


def test_sigv4_signatures(tmp_path):
    srv = Server(tmp_path / "state", API_TEMPLATE, "--credentials", "AKIDWARMSTART:s3cret").start()
    try:
        good = srv.client("AKIDWARMSTART", "s3cret")
        assert good.invoke(FunctionName="Echo", Payload=b'{"signed": true}')["StatusCode"] == 200
        assert good.list_functions()["Functions"]
        wrong_secret = srv.client("AKIDWARMSTART", "not-it")
        with pytest.raises(Exception) as e:
            wrong_secret.invoke(FunctionName="Echo", Payload=b"{}")
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        wrong_key = srv.client("AKIDOTHER", "s3cret")
        with pytest.raises(Exception) as e:
            wrong_key.list_functions()
        assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
        status, headers, _, _body = http(
            "POST", srv.lambda_url + "/2015-03-31/functions/Echo/invocations", b"{}"
        )
        assert (
            status == 403 and headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        )
    finally:
        code, out = srv.stop()
    assert code == 0, out


@pytest.mark.parametrize("quiet", [False, True])
def test_the_console_says_what_each_invocation_did(tmp_path, quiet):
    srv = Server(tmp_path / "state", API_TEMPLATE, *(["--quiet"] if quiet else [])).start()
    try:
        client = srv.client()
        for _ in range(2):
            client.invoke(FunctionName="WebEcho", Payload=b"{}")
    finally:
        code, out = srv.stop()
    assert code == 0, out
    lines = [line for line in out.splitlines() if re.match(r"[\d:.]{12}  WebEcho  ", line)]
    if quiet:
        assert lines == []
    else:
        assert [line.split("  ")[2] for line in lines] == ["cold", "warm"], out
        assert all("  ok  " in line for line in lines)


def test_a_route_of_an_auto_published_function_invokes_its_alias(server):
    # As SAM wires it: the event source invokes the alias, so its provisioned environments (and
    # not $LATEST's) take the API's traffic.
    before = time.time()
    http("GET", server.api_url + "/items/5")
    db = sqlite3.connect(server.state_dir / "warmstart.db")
    deadline = time.monotonic() + 10
    rows: list[tuple[str, str]] = []
    while not rows and time.monotonic() < deadline:
        rows = db.execute(
            "SELECT version, qualifier FROM invocations WHERE function = 'Echo' "
            "AND started_at >= ?",
            (before,),
        ).fetchall()
        time.sleep(0.05)
    assert rows == [("1", "live")]
