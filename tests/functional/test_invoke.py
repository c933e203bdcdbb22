"""Invocations through the Python API: cold and warm starts, context, environment, logs, records."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
import uuid

import pytest

from conftest import BASIC, PY, event, spec
from warmstart import parse_report
from warmstart.observe.logs import stream_path

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_cold_then_warm_reuses_the_environment(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    first = rt.invoke("Echo", {"n": 1})
    second = rt.invoke("Echo", {"n": 2})
    assert first.start_kind == "cold" and second.start_kind == "warm"
    assert first.report.init_duration_ms is not None and first.report.init_duration_ms > 0
    assert second.report.init_duration_ms is None
    assert first.payload["pid"] == second.payload["pid"]
    assert (first.payload["calls"], second.payload["calls"]) == (1, 2)  # globals persist
    assert second.payload["event"] == {"n": 2}


def test_event_fixture_round_trips(make_runtime):
    rt = make_runtime(spec("Echo", "results.echo_event"))
    assert rt.invoke("Echo", event("order.json")).payload == event("order.json")
    assert rt.invoke("Echo", None).payload == {}  # no payload: the handler gets {}
    assert rt.invoke("Echo", b"[1, 2]").payload == [1, 2]


def test_context_matches_the_aws_runtime(make_runtime):
    rt = make_runtime(
        spec("Echo", "echo.handler", memory_size=256, timeout=7),
        region="eu-west-1",
        account_id="111122223333",
    )
    res = rt.invoke(
        "Echo",
        {},
        client_context='{"custom": {"a": 1}, "env": {"b": 2}, '
        '"client": {"installation_id": "i-1"}}',
        identity='{"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}',
    )
    ctx = res.payload["context"]
    assert ctx["function_name"] == "Echo"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:Echo"
    assert ctx["memory_limit_in_mb"] == "256"  # a string, as in the AWS runtime
    assert ctx["aws_request_id"] == res.request_id and UUID.match(res.request_id)
    assert ctx["log_group_name"] == "/aws/lambda/Echo"
    assert ctx["log_stream_name"] == res.stream
    assert re.match(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$", res.stream)
    assert 5000 < ctx["remaining_ms"] <= 7000
    assert ctx["identity"] == ["id-1", "pool-1"]
    assert ctx["client_context"] == {"custom": {"a": 1}, "env": {"b": 2}, "installation_id": "i-1"}


def test_environment_variables_are_lambdas(make_runtime):
    rt = make_runtime(
        spec("Echo", "echo.handler", memory_size=512, environment={"TABLE": "orders", "TZ": ":UTC"})
    )
    res = rt.invoke("Echo", {}, trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    env = res.payload["env"]
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "Echo",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Echo",
        "AWS_LAMBDA_LOG_STREAM_NAME": res.stream,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{PY}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "echo.handler",
        "LAMBDA_TASK_ROOT": str(BASIC),
        "TZ": ":UTC",
        "TABLE": "orders",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    }
    assert {k: env.get(k) for k in expected} == expected
    for key in (
        "LAMBDA_RUNTIME_DIR",
        "AWS_LAMBDA_RUNTIME_API",
        "PATH",
        "LANG",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "TMPDIR",
    ):
        assert key in env, key
    assert res.payload["cwd"] == str(BASIC)
    # The trace id is per invocation: gone when the next one has none.
    assert "_X_AMZN_TRACE_ID" not in rt.invoke("Echo", {}).payload["env"]


def test_each_environment_has_its_own_tmp(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))

    async def two_at_once():
        return await asyncio.gather(rt.ainvoke("Echo", {}), rt.ainvoke("Echo", {}))

    a, b = asyncio.run(two_at_once())
    assert a.payload["pid"] != b.payload["pid"]
    assert a.payload["tmp"] != b.payload["tmp"]
    assert a.payload["tmp"] == a.payload["env"]["TMPDIR"]


def test_log_has_lambdas_platform_lines(make_runtime):
    rt = make_runtime(spec("Printer", "printer.handler"))
    res = rt.invoke("Printer", {})
    lines = res.log.splitlines()
    assert lines[0].startswith("INIT_START Runtime Version: python:")
    assert "\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:" in lines[0]
    assert lines[1] == "printed during INIT"
    assert lines[2] == f"START RequestId: {res.request_id} Version: $LATEST"
    body = lines[3:-2]
    assert body[:2] == ["to stdout", "to stderr"]
    assert re.match(
        rf"^\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{res.request_id}"
        r"\ta warning with args$",
        body[2],
    )
    assert body[3].startswith("[ERROR]\t") and body[3].endswith("\tfrom a named logger")
    assert "info is below the default level" not in res.log  # root stays at WARNING
    assert body[4:] == ["raw fd write", "context.log line"]
    assert lines[-2] == f"END RequestId: {res.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {res.request_id}\tDuration: ")
    assert lines[-1].endswith("\t") and "Init Duration: " in lines[-1]
    parsed = parse_report(res.log)  # the line carries two decimals; the result, full precision
    assert parsed.duration_ms == pytest.approx(res.report.duration_ms, abs=0.005)
    assert parsed.init_duration_ms == pytest.approx(res.report.init_duration_ms, abs=0.005)
    assert parsed._replace(duration_ms=0, init_duration_ms=0) == res.report._replace(
        duration_ms=0, init_duration_ms=0
    )
    warm = rt.invoke("Printer", {})
    assert not warm.log.startswith("INIT_START") and "Init Duration" not in warm.log


def test_report_fields(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler", memory_size=1024))
    cold = rt.invoke("Noop", {})
    warm = rt.invoke("Noop", {})
    r = cold.report
    assert r.request_id == cold.request_id and r.memory_size_mb == 1024
    assert 0 < r.max_memory_used_mb <= 1024
    # INIT is billed for on-demand environments: ceil(Duration + Init Duration).
    assert r.billed_duration_ms == max(1, -int(-(r.duration_ms + r.init_duration_ms) // 1))
    assert warm.report.billed_duration_ms == max(1, -int(-warm.report.duration_ms // 1))
    assert r.status == warm.report.status == "success"


def test_records_and_log_streams_are_written(make_runtime, state_dir):
    rt = make_runtime(spec("Noop", "noop.handler"), spec("Echo", "echo.handler"))
    results = [rt.invoke("Noop", {}) for _ in range(3)] + [rt.invoke("Echo", {})]
    rt.flush()
    db = sqlite3.connect(state_dir / "warmstart.db")
    rows = db.execute(
        "SELECT request_id, function, version, environment_id, start_kind, init_ms, "
        "duration_ms, billed_ms, memory_mb, max_memory_mb, status, cpu_throttled "
        "FROM invocations ORDER BY started_at"
    ).fetchall()
    assert [r[0] for r in rows] == [r.request_id for r in results]
    assert [r[4] for r in rows] == ["cold", "warm", "warm", "cold"]
    assert rows[0][1:4] == ("Noop", "$LATEST", results[0].environment_id)
    assert rows[0][5] == pytest.approx(results[0].report.init_duration_ms)
    assert rows[1][5] is None and rows[1][10] == "success"
    text = stream_path(state_dir, "Noop", results[0].stream).read_text()
    assert text == "".join(r.log for r in results[:3])


def test_async_invocations_run_concurrently(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))

    async def main():
        return await asyncio.gather(*(rt.ainvoke("Sleeper", {"seconds": 0.3}) for _ in range(5)))

    results = asyncio.run(main())
    assert {r.start_kind for r in results} == {"cold"}
    assert len({r.environment_id for r in results}) == 5
    assert all(r.payload["slept"] == 0.3 for r in results)
    # Five 0.3 s invocations at once take far less than 1.5 s of wall time.
    assert max(r.latency_ms for r in results) < 1200


def test_threads_invoke_concurrently(make_runtime):
    from concurrent.futures import ThreadPoolExecutor

    rt = make_runtime(spec("Noop", "noop.handler"))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: rt.invoke("Noop", {}), range(200)))
    assert all(r.payload == {"hello": "world"} for r in results)
    assert len({r.request_id for r in results}) == 200
    assert 1 <= len({r.environment_id for r in results}) <= 8


def test_results_are_encoded_as_the_aws_runtime_does(make_runtime):
    rt = make_runtime(
        spec("Dec", "results.decimals"),
        spec("Uni", "results.unicode"),
        spec("Raw", "results.raw_bytes"),
    )
    assert rt.invoke("Dec", {}).payload == {"price": 1.5, "count": 3}
    uni = rt.invoke("Uni", {})
    assert uni.payload == {"text": "héllo ✓"}
    # Before python3.12 the runtime escapes non-ASCII characters.
    assert (b"\\u00e9" in uni.raw) == (sys.version_info < (3, 12))
    assert rt.invoke("Raw", {}).raw == b"raw"


def test_request_ids_are_unique_uuids(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"))
    ids = [rt.invoke("Noop", {}).request_id for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_large_events_and_results_cross_intact(make_runtime):
    rt = make_runtime(spec("Echo", "results.echo_event", memory_size=1024))
    big = {"blob": "x" * (5 * 1024 * 1024), "n": 1}
    res = rt.invoke("Echo", big)
    assert res.payload == big
    assert rt.invoke("Echo", {"small": True}).payload == {"small": True}


def test_active_tracing_gives_each_invocation_a_trace_header(make_runtime):
    # X-Ray-instrumented code then has a segment to work in, as on Lambda.
    rt = make_runtime(
        spec("Traced", "echo.handler", tracing="Active"), spec("Plain", "echo.handler")
    )
    header = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1")
    first, second = (rt.invoke("Traced", {}).payload["env"]["_X_AMZN_TRACE_ID"] for _ in "ab")
    assert header.fullmatch(first) and header.fullmatch(second) and first != second
    assert "_X_AMZN_TRACE_ID" not in rt.invoke("Plain", {}).payload["env"]
    given = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert rt.invoke("Traced", {}, trace_id=given).payload["env"]["_X_AMZN_TRACE_ID"] == given
