"""Invoke payloads Lambda's front end refuses, through every door warmstart has: `serve`'s raw
Invoke path (RequestResponse, Event, DryRun, the legacy InvokeAsync), the ASGI application, the
Python API and the CLI. Each is Lambda's 400 InvalidRequestContentException (or the Python API's
InvalidRequestContentError) with the same message, never a 500, never a traceback."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import BASIC, spec
from warmstart import InvalidRequestContentError
from warmstart.frontdoor.lambda_api import LambdaApi

PREFIX = "Could not parse request body into json: Could not parse payload into json: "
NESTING = (
    "Document nesting depth (1001) exceeds the maximum allowed (1000, "
    "from `StreamReadConstraints.getMaxNestingDepth()`)"
)


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


BAD = {
    "nested 10,000 deep": (nested(10_000), NESTING),
    "nested 1,001 deep": (b'{"a": ' + nested(1001) + b"}", NESTING),
    "nested in a string-heavy body": (b'["]]]",' * 600 + nested(1001) + b"]" * 600, NESTING),
    "NaN": (b'{"a": NaN}', "Non-standard token 'NaN': enable `JsonReadFeature."),
    "Infinity": (b"[1, Infinity]", "Non-standard token 'Infinity'"),
    "-Infinity": (b"-Infinity", "Non-standard token '-Infinity'"),
    "invalid UTF-8 start": (b'"\x97abc"', "Invalid UTF-8 start byte 0x97"),
    "invalid UTF-8 middle": (b'{"a": "\xc3\x28"}', "Invalid UTF-8 middle byte 0x28"),
    "not JSON": (b"hello", "Expecting value"),
    "unfinished": (b'{"a": [1, 2', "Expecting"),
    "two documents": (b"{} {}", "Extra data"),
    "a control character": (b'"a\x01b"', "Invalid control character"),
}
GOOD = {
    "empty": (b"", {}),
    "NaN in a string": (b'{"a": "NaN", "b": "Infinity"}', {"a": "NaN", "b": "Infinity"}),
    "500 deep": (nested(500), json.loads(nested(500))),
    "UTF-8": ('{"é": "✓"}'.encode(), {"é": "✓"}),
}


def invoke(server, body: bytes, kind: str = "RequestResponse", path: str | None = None):
    """(status, error type, body) of an Invoke sent raw, as boto3 sends it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {
        "Content-Type": "application/json",
        "Host": f"127.0.0.1:{server.port}",
        "X-Amz-Invocation-Type": kind,
    }
    try:
        conn.request("POST", path or "/2015-03-31/functions/Echo/invocations", body, headers)
        res = conn.getresponse()
        return res.status, res.getheader("x-amzn-errortype"), res.read()
    finally:
        conn.close()


def events_stored(server) -> int:
    db = sqlite3.connect(server.state_dir / "warmstart.db")
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # no event yet, no table
        return 0
    finally:
        db.close()


def _refused(status: int, error: str | None, body: bytes, message: str) -> str:
    assert (status, error) == (400, "InvalidRequestContentException"), body
    doc = json.loads(body)
    assert doc["Type"] == "User" and doc["message"].startswith(PREFIX + message), doc
    return str(doc["message"])


@pytest.mark.parametrize("case", BAD)
def test_serve_refuses_what_lambda_refuses(server, case):
    body, message = BAD[case]
    stored = events_stored(server)
    answers = {
        _refused(*invoke(server, body, kind), message)
        for kind in ("RequestResponse", "Event", "DryRun")
    }
    legacy = invoke(server, body, path="/2014-11-13/functions/Echo/invoke-async")
    answers.add(_refused(*legacy, message))
    assert len(answers) == 1  # one check, one message, whichever door
    assert events_stored(server) == stored  # nothing queued
    status, _, payload = invoke(server, b'{"after": 1}')
    assert status == 200 and json.loads(payload)["event"] == {"after": 1}


@pytest.mark.parametrize("case", GOOD)
def test_serve_accepts_what_lambda_accepts(server, case):
    body, event = GOOD[case]
    status, error, payload = invoke(server, body)
    assert (status, error) == (200, None), payload
    assert json.loads(payload)["event"] == event
    assert invoke(server, body, "DryRun")[0] == 204


def test_the_same_messages_from_the_python_api_and_asgi(server, make_runtime):
    """The Python API raises what serve answers, word for word; so does the ASGI application
    (`LambdaApi` on any ASGI server), which answers Invoke without serve's fast path."""
    rt = make_runtime(spec("Echo", "echo.handler"))
    api = LambdaApi(rt)
    for case, (body, _) in BAD.items():
        over_http = json.loads(invoke(server, body)[2])["message"]
        with pytest.raises(InvalidRequestContentError) as e:
            rt.invoke("Echo", body)
        assert str(e.value) == over_http, case
        with pytest.raises(InvalidRequestContentError):
            rt.invoke_async("Echo", body)
        status, headers, answer = asyncio.run(_asgi_invoke(api, body))
        assert (status, headers[b"x-amzn-errortype"]) == (400, b"InvalidRequestContentException")
        assert json.loads(answer)["message"] == over_http, case
    for case, (body, event) in GOOD.items():
        assert rt.invoke("Echo", body).payload["event"] == event, case
        status, _, answer = asyncio.run(_asgi_invoke(api, body))
        assert status == 200 and json.loads(answer)["event"] == event, case


async def _asgi_invoke(api: LambdaApi, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    path = "/2015-03-31/functions/Echo/invocations"
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1:3001")],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await api(scope, receive, send)
    start, answer = sent
    return int(start["status"]), dict(start["headers"]), bytes(answer["body"])  # type: ignore[arg-type]


def test_python_api_events_that_cannot_be_json(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))

    def deep(levels: int) -> list[object]:
        out: list[object] = []
        for _ in range(levels - 1):
            out = [out]
        return out

    cases = {
        "NaN": ({"a": float("nan")}, "Non-standard token 'NaN'"),
        "-Infinity": ([float("-inf")], "Non-standard token '-Infinity'"),
        "too deep": (deep(5000), "Document nesting depth (1001)"),
        "1,001 deep": (deep(1001), "Document nesting depth (1001)"),
        "a lone surrogate": ("\ud800", "not valid Unicode"),
        "not serializable": ({"when": object()}, "not JSON serializable"),
    }
    for case, (event, message) in cases.items():
        with pytest.raises(InvalidRequestContentError, match=re.escape(message)):
            rt.invoke("Echo", event)
        with pytest.raises(InvalidRequestContentError):
            rt.invoke_async("Echo", event)
        assert case
    assert rt.invoke("Echo", deep(500)).payload["event"] == deep(500)


@pytest.mark.parametrize(
    "given, message",
    [
        (["--event", "[NaN]"], "the event is not valid JSON: Non-standard token 'NaN'"),
        (["--event", "{"], "the event is not valid JSON: Expecting property name"),
        (["--event", os.fsdecode(b'"\xff"')], "Invalid UTF-8 start byte 0xff"),
        (["-e", "deep.json"], "deep.json is not valid JSON: Document nesting depth (1001)"),
        (["-e", "-"], "the event is not valid JSON: Non-standard token 'Infinity'"),
    ],
)
def test_cli_events(tmp_path, given, message):
    (tmp_path / "deep.json").write_bytes(nested(10_000))
    p = subprocess.run(
        [sys.executable, "-m", "warmstart.cli", "invoke", "--handler", "echo.handler",
         "--code-dir", str(BASIC), "--state-dir", str(tmp_path / "state"), *given],
        cwd=tmp_path, input=b"[Infinity]", capture_output=True, timeout=120,
    )  # fmt: skip
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_event_the_front_door_allows_but_the_runtime_cannot_parse_is_an_unmarshal_error(
    make_runtime,
):
    # 1,000 levels pass Lambda's front door; Python's json in the environment gives up a little
    # earlier, and the AWS runtime reports that as Runtime.UnmarshalError.
    rt = make_runtime(spec("Echo", "echo.handler"))
    res = rt.invoke("Echo", nested(1000))
    assert res.error_type == "Runtime.UnmarshalError", res.payload
    assert res.payload["errorMessage"].startswith("Unable to unmarshal input: ")
