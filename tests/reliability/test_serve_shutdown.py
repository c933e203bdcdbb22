"""SIGTERM with invocations still running past --graceful-timeout: their callers are answered
(a 5xx, not a bare disconnect), their records are written, and queued events are kept."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from conftest import process_gone, wait_for
from e2e.serve_helpers import API_TEMPLATE, Server, descendants
from reliability.test_serve_guard import code_zip


def _rows(state, query: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(state / "warmstart.db")
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def _running(server: Server, function: str = "Sleeper") -> bool:
    """The function's environment is busy: its invocation is in flight."""
    busy = f'warmstart_environments{{function="{function}",state="busy"}} 1.0'
    with urllib.request.urlopen(server.lambda_url + "/metrics", timeout=10) as r:
        return busy in r.read().decode()


@pytest.fixture
def srv(tmp_path):
    server = Server(tmp_path / "state", API_TEMPLATE, "--graceful-timeout", "1").start()
    yield server
    if server.proc.poll() is None:  # a test that failed before it stopped the server
        server.stop(signal.SIGKILL)


def test_past_the_grace_period_the_lambda_api_answers_5xx_and_records(srv):
    state = srv.state_dir
    client = srv.client()
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = client.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 60}')
        except Exception as e:
            outcome["error"] = e

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: _running(srv), timeout=30)
    pids = descendants(srv.proc.pid)
    started = time.monotonic()
    code, out = srv.stop(signal.SIGTERM)
    caller.join(30)
    assert code == 0, out
    assert time.monotonic() - started < 30  # not the 60 s the handler wanted
    error = outcome.get("error")
    assert error is not None, outcome  # not a 200 with a dead function's error
    response = error.response  # a ClientError: an answer came, not a disconnect
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == "ServiceException"
    assert "--graceful-timeout" in response["Error"]["Message"]
    request_id = response["ResponseMetadata"]["RequestId"]
    assert _rows(
        state,
        "SELECT function, status, error_type FROM invocations WHERE request_id = ?",
        request_id,
    ) == [("Sleeper", "error", "Runtime.ExitError")]
    assert all(wait_for(lambda p=p: process_gone(p), 10) for p in pids)


def test_past_the_grace_period_the_api_port_answers_502_and_records(srv):
    state = srv.state_dir
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            with urllib.request.urlopen(srv.api_url + "/slow", timeout=60) as r:
                outcome["answer"] = (r.status, r.read())
        except urllib.error.HTTPError as e:
            outcome["answer"] = (e.code, e.read())
        except Exception as e:
            outcome["error"] = e

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: _running(srv), timeout=30)
    code, out = srv.stop(signal.SIGTERM)
    caller.join(30)
    assert code == 0, out
    assert outcome.get("answer") == (
        502,
        json.dumps({"message": "Internal server error"}).encode(),
    ), outcome
    assert _rows(
        state, "SELECT status, error_type FROM invocations WHERE function = 'Sleeper'"
    ) == [("error", "Runtime.ExitError")]


def test_past_the_grace_period_a_running_event_is_kept_for_the_next_start(srv):
    state = srv.state_dir
    client = srv.client()
    code = code_zip({"nap.py": "import time\ndef handler(event, context):\n    time.sleep(60)\n"})
    client.create_function(
        FunctionName="Napper",
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/x",
        Handler="nap.handler",
        Timeout=120,
        Code={"ZipFile": code},
    )
    res = client.invoke(FunctionName="Napper", InvocationType="Event", Payload=b"{}")
    event_id = res["ResponseMetadata"]["RequestId"]

    def call() -> None:  # a caller in flight, so that the grace period runs out
        with contextlib.suppress(Exception):
            client.invoke(FunctionName="Sleeper", Payload=b'{"seconds": 60}')

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: _running(srv, "Napper") and _running(srv), timeout=30)
    code, out = srv.stop(signal.SIGTERM)
    caller.join(30)
    assert code == 0, out
    assert "were ended" in out  # the grace period did run out
    [(status, attempts)] = _rows(
        state, "SELECT status, attempts FROM events WHERE id = ?", event_id
    )
    assert status != "failed" and attempts == 0  # not counted as a failure of the function
