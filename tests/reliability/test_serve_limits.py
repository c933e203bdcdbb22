"""`warmstart serve` against clients that send too much, too slowly, or unsigned: nothing large
is read before a request is known (and, with --credentials, authenticated)."""

from __future__ import annotations

import hashlib
import json
import resource
import socket
import time
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import wait_for
from e2e.serve_helpers import API_TEMPLATE, Server
from reliability.test_serve_guard import message, raw

KEY, SECRET = "AKIDGUARD", "s3cret"
INVOKE = "/2015-03-31/functions/Echo/invocations"
TIMEOUT_S = 2  # --request-timeout of the servers here (the head's, too)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("limits"),
        API_TEMPLATE,
        "--request-timeout",
        str(TIMEOUT_S),
        "--max-connections",
        "40",
    ).start()
    yield srv
    code, out = srv.stop()
    assert code == 0, out


def closed(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing the connection (None: still open at the timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


def serving(server: Server) -> bool:
    status, _, body = raw(server.port, message("POST", INVOKE, b'{"ok": 1}'))
    return status == 200 and json.loads(body)["event"] == {"ok": 1}


# -- oversized heads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [(INVOKE, "POST"), ("/2015-03-31/functions", "GET"), ("/v2/items/1", "GET")],
)
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "a" * 100_000},  # one large header
        {f"X-H{i}": "b" * 100 for i in range(200)},  # many small ones
    ],
)
def test_an_oversized_head_gets_431(server, path, method, headers):
    port = server.api_port if path.startswith("/v2") else server.port
    body = b"{}" if method == "POST" else b""
    # Sent in one write, head and body arrive in one read: the head is measured exactly.
    status, answer, text = raw(port, message(method, path, body, headers=headers))
    assert status == 431, text
    assert answer["x-amzn-errortype"] == "RequestHeaderFieldsTooLargeException"
    assert answer["connection"] == "close"
    assert serving(server)


def test_a_pipelined_oversized_head_is_measured_too(server):
    """A read that ends one request and begins the next: the next one's head is measured."""
    big = message("GET", "/2015-03-31/functions", headers={"X-Big": "a" * 100_000})
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"GET /2015-03-31/functions/Echo/configuration HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.2)
        s.sendall(b"\r\n" + big)
        answers = closed(s, TIMEOUT_S + 10)
    assert answers is not None  # closed, not waiting for more
    assert answers.count(b"HTTP/1.1 200 ") <= 1, answers[:300]  # the big one is not answered


def test_a_head_that_never_ends_is_cut_off(server):
    """100 MB of headers answered 200 before: now 431 within the first reads."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        try:
            while sent < 100_000_000:
                s.sendall(b"x" * 65536)
                sent += 65536
        except OSError:  # refused: the server closed the connection
            pass
        answer = closed(s, 10)
    assert sent < 20_000_000, sent
    assert answer is not None and answer.startswith(b"HTTP/1.1 431 "), answer
    assert serving(server)


def test_heads_within_the_bound_pass(server):
    """What AWS clients can send: a 3,583-byte client context, a long session token."""
    context = "e30=" + "A" * 3579
    headers = {"X-Amz-Client-Context": context, "X-Amz-Security-Token": "T" * 4000}
    status, _, body = raw(server.port, message("POST", INVOKE, b'{"n": 2}', headers=headers))
    assert status == 400 and "Client context" in json.loads(body)["message"]  # read, judged
    status, _, _ = raw(
        server.api_port, message("GET", "/v2/items/1", headers={"Cookie": "c" * 9000})
    )
    assert status == 200


# -- slow requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("port_name", ["port", "api_port"])
def test_slow_requests_are_timed_out_while_others_are_served(server, port_name):
    port = getattr(server, port_name)
    path = INVOKE if port_name == "port" else "/v1/items/1"  # a POST route
    slow_head = socket.create_connection(("127.0.0.1", port))
    slow_head.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow".encode())
    slow_body = socket.create_connection(("127.0.0.1", port))
    slow_body.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{{".encode()
    )
    idle = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    assert serving(server)  # meanwhile, others are answered
    with slow_head, slow_body, idle:
        head, body, nothing = (closed(s, TIMEOUT_S + 10) for s in (slow_head, slow_body, idle))
    assert time.monotonic() - started >= TIMEOUT_S - 0.5
    for answer in (head, body):
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"RequestTimeoutException" in answer
    assert nothing == b""  # an idle connection is closed without a word
    assert serving(server)


def test_a_slow_trickle_does_not_keep_a_request_open(server):
    """A byte a second keeps every read fresh; the request's whole time is still bounded."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            f"POST {INVOKE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = b""
        s.settimeout(0.5)
        while time.monotonic() - started < TIMEOUT_S + 10:
            try:
                s.sendall(b" ")
            except OSError:  # closed: what it answered is still there to read
                pass
            try:
                answer += s.recv(65536)
                break
            except TimeoutError:
                continue
        assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_connections_over_the_cap_get_503_and_slots_come_back(server):
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    try:
        time.sleep(0.3)
        status, answer, body = raw(server.port, message("POST", INVOKE, b"{}"))
        assert status == 503 and answer["x-amzn-errortype"] == "ServiceUnavailableException", body
    finally:
        for s in idle:
            s.close()
    assert wait_for(lambda: serving(server), timeout=TIMEOUT_S + 10, interval=0.2)


def test_thousands_of_slow_connections_leave_the_server_answering(tmp_path):
    """The soft limit on open files is raised to the hard one at start: slow clients time out
    before they can take every descriptor, and requests are still answered meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip(f"the hard limit on open files is {hard}: too low to open enough connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # what serve inherits
    try:
        srv = Server(tmp_path / "state", API_TEMPLATE, "--request-timeout", str(TIMEOUT_S)).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{srv.proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert line.split()[3] == line.split()[4] == str(hard), line
        slow = []
        for _ in range(1500):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\n")
            slow.append(s)
        try:
            assert srv.client().invoke(FunctionName="Echo", Payload=b"{}")["StatusCode"] == 200
            assert all(closed(s, TIMEOUT_S + 30) is not None for s in slow[:50])
        finally:
            for s in slow:
                s.close()
        assert srv.client().invoke(FunctionName="Echo", Payload=b"{}")["StatusCode"] == 200
    finally:
        code, out = srv.stop()
    assert code == 0, out


# -- with --credentials: authentication before anything large or named ----------------------------


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("signed"), API_TEMPLATE, "--credentials", f"{KEY}:{SECRET}"
    ).start()
    yield srv
    code, out = srv.stop()
    assert code == 0, out


def signed(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
) -> bytes:
    """A request signed as botocore signs it (SigV4), as raw bytes."""
    req = AWSRequest(
        method=method, url=f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}
    )
    SigV4Auth(Credentials(KEY, secret), "lambda", "us-east-1").add_auth(req)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def bytes_read(pid: int) -> int:
    """Bytes the process has read with read(2) and friends: sockets included."""
    return int(Path(f"/proc/{pid}/io").read_text().split("rchar:")[1].split()[0])


def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (INVOKE, {}),
        ("/2015-03-31/functions", {"Content-Type": "application/json"}),  # CreateFunction
        ("/2015-03-31/functions/Nope/invocations", {}),
        # signed, with the body's hash, by a wrong secret: the whole signature is checked first
        (INVOKE, {"signed": "wrong"}),
    ],
)
def test_a_70_mb_body_is_refused_without_being_read(signed_server, path, headers):
    size = 70 * 1024 * 1024
    pid = signed_server.proc.pid
    chunk = b"a" * (1 << 20)
    if headers.pop("signed", None):
        digest = hashlib.sha256(chunk * 70).hexdigest()
        head = signed(
            signed_server.port, "POST", path, b"", {"X-Amz-Content-SHA256": digest}, "wrong"
        )
        head = head.replace(b"Content-Length: 0", f"Content-Length: {size}".encode())
        expected = "InvalidSignatureException"
    else:
        head = message("POST", path, headers={**headers, "Content-Length": str(size)})
        head = head.replace(b"Content-Length: 0\r\n", b"")
        expected = "MissingAuthenticationTokenException"
    before, rss_before = bytes_read(pid), rss_kb(pid)
    sent = 0
    with socket.create_connection(("127.0.0.1", signed_server.port), timeout=30) as s:
        s.sendall(head)
        try:
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # refused and closed: the rest is never taken
            pass
        answer = closed(s, 10)
    assert (
        answer is not None and answer.startswith(b"HTTP/1.1 403 ") and expected.encode() in answer
    ), answer
    assert sent < 32 * 1024 * 1024, sent  # the client was stopped (socket buffers took the rest)
    # What the server read meanwhile: far from the 70 MB (it also reads files of its own then,
    # such as botocore's model of the Lambda API, loaded in the background at start).
    assert bytes_read(pid) - before < 24 * 1024 * 1024
    assert rss_kb(pid) - rss_before < 16 * 1024


def test_unsigned_payloads_are_refused(signed_server):
    path = INVOKE
    for value in ("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "not-a-hash"):
        data = signed(
            signed_server.port, "POST", path, b'{"n": 1}', {"X-Amz-Content-SHA256": value}
        )
        status, answer, body = raw(signed_server.port, data)
        assert (status, answer["x-amzn-errortype"]) == (403, "InvalidSignatureException"), body
    # a signed hash that is not the body's: the body was swapped after signing
    other = hashlib.sha256(b'{"n": 1}').hexdigest()
    data = signed(signed_server.port, "POST", path, b'{"n": 1}', {"X-Amz-Content-SHA256": other})
    status, _, body = raw(signed_server.port, data.replace(b'{"n": 1}', b'{"n": 2}'))
    assert status == 403 and "x-amz-content-sha256" in json.loads(body)["message"]
    # the body's own hash: accepted
    status, _, body = raw(signed_server.port, data)
    assert status == 200 and json.loads(body)["event"] == {"n": 1}


def test_names_and_sizes_are_told_only_after_authentication(signed_server):
    port = signed_server.port
    big = b'"' + b"x" * (6 * 1024 * 1024 + 10) + b'"'
    cases = [
        ("GET", "/2015-03-31/functions/Nope", b"", 404, "ResourceNotFoundException"),
        ("GET", "/no/such/operation", b"", 404, "UnknownOperationException"),
        ("DELETE", "/2015-03-31/functions", b"", 405, "MethodNotAllowedException"),
        ("POST", "/2015-03-31/functions/Nope/invocations", b"{}", 404, "ResourceNotFoundException"),
        (
            "POST",
            "/2015-03-31/functions/bad%20name/invocations",
            b"{}",
            400,
            "InvalidParameterValueException",
        ),
        ("POST", INVOKE, big, 413, "RequestTooLargeException"),
    ]
    for method, path, body, status, code in cases:
        got, answer, _ = raw(port, message(method, path, body))
        assert (got, answer["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException"), (
            path
        )
        got, answer, text = raw(port, signed(port, method, path, body))
        assert (got, answer["x-amzn-errortype"]) == (status, code), (path, text[:200])


def test_metrics_are_signed_too(signed_server):
    status, answer, _ = raw(signed_server.port, message("GET", "/metrics"))
    assert (status, answer["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    status, _, body = raw(signed_server.port, signed(signed_server.port, "GET", "/metrics"))
    assert status == 200 and b"warmstart_invocations_total" in body


def test_a_chunked_bodys_trailers_are_not_headers(server):
    """A trailer cannot change a request after its headers were checked (uvicorn appended
    them to the request's headers: an Invoke became an Event)."""
    data = (
        f"POST {INVOKE} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        '8\r\n{"t": 1}\r\n0\r\nX-Amz-Invocation-Type: Event\r\nHost: evil.example\r\n\r\n'
    ).encode()
    status, _, body = raw(server.port, data)
    assert status == 200 and json.loads(body)["event"] == {"t": 1}
