"""Concurrency: scaling out, reserved and account limits, provisioned concurrency, aliases."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from conftest import spec
from warmstart import ResourceNotFoundError, TooManyRequestsError
from warmstart.errors import InvalidParameterValueError


async def _at_once(rt, name, n, event, qualifier=None):
    return await asyncio.gather(
        *(rt.ainvoke(name, event, qualifier) for _ in range(n)), return_exceptions=True
    )


def test_scale_out_then_reuse_most_recent_first(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    results = asyncio.run(_at_once(rt, "Sleeper", 3, {"seconds": 0.2}))
    assert [r.start_kind for r in results] == ["cold"] * 3
    assert len(rt.environments("Sleeper")) == 3
    # Sequential invocations reuse one environment: the most recently used.
    last = rt.invoke("Sleeper", {"seconds": 0}).environment_id
    assert {rt.invoke("Sleeper", {"seconds": 0}).environment_id for _ in range(5)} == {last}


def test_reserved_concurrency_throttles(make_runtime, state_dir):
    rt = make_runtime(spec("Capped", "sleeper.handler", reserved_concurrency=2))
    results = asyncio.run(_at_once(rt, "Capped", 4, {"seconds": 0.3}))
    throttled = [r for r in results if isinstance(r, TooManyRequestsError)]
    assert len(throttled) == 2
    assert {t.reason for t in throttled} == {"ReservedFunctionConcurrentInvocationLimitExceeded"}
    assert sum(1 for r in results if not isinstance(r, Exception)) == 2
    rt.flush()
    rows = (
        sqlite3.connect(state_dir / "warmstart.db")
        .execute("SELECT status, error_type FROM invocations WHERE status = 'throttled'")
        .fetchall()
    )
    assert rows == [("throttled", "ReservedFunctionConcurrentInvocationLimitExceeded")] * 2


def test_reserved_zero_always_throttles(make_runtime):
    rt = make_runtime(spec("Off", "noop.handler", reserved_concurrency=0))
    with pytest.raises(TooManyRequestsError) as e:
        rt.invoke("Off", {})
    assert e.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    rt.put_reserved_concurrency("Off", None)
    assert rt.invoke("Off", {}).payload == {"hello": "world"}


def test_account_limit_throttles_unreserved_functions(make_runtime):
    rt = make_runtime(
        spec("A", "sleeper.handler"),
        spec("B", "sleeper.handler"),
        spec("R", "sleeper.handler", reserved_concurrency=1),
        account_concurrency=3,
    )

    async def main():
        return await asyncio.gather(
            *(rt.ainvoke(n, {"seconds": 0.3}) for n in ("A", "B", "A", "B", "R")),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    # 3 - 1 reserved = 2 unreserved slots for A and B together; R has its own.
    errors = [r for r in results if isinstance(r, TooManyRequestsError)]
    assert [e.reason for e in errors] == ["ConcurrentInvocationLimitExceeded"] * 2
    assert not isinstance(results[4], Exception)


def test_reservations_cannot_exceed_the_account(make_runtime):
    with pytest.raises(InvalidParameterValueError, match="exceeds the account limit"):
        make_runtime(spec("A", "noop.handler", reserved_concurrency=5), account_concurrency=4)


def test_provisioned_concurrency(make_runtime):
    rt = make_runtime(
        spec("Pc", "echo.handler", auto_publish_alias="live", provisioned_concurrency=2)
    )
    envs = rt.environments("Pc")
    # Initialized at start-up, before any request, for the alias's version only.
    assert len(envs) == 2
    assert {(e["version"], e["init_type"]) for e in envs} == {("1", "provisioned-concurrency")}
    res = rt.invoke("Pc", {}, qualifier="live")
    assert res.start_kind == "provisioned" and res.version == "1"
    assert res.report.init_duration_ms is None and "Init Duration" not in res.log
    assert res.payload["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert res.payload["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert res.payload["context"]["invoked_function_arn"].endswith(":function:Pc:live")
    assert res.report.billed_duration_ms == max(1, -int(-res.report.duration_ms // 1))
    # $LATEST has no provisioned environments: a cold start.
    latest = rt.invoke("Pc", {})
    assert latest.start_kind == "cold" and latest.version == "$LATEST"
    assert rt.invoke("Pc", {}, qualifier="1").start_kind == "provisioned"


def test_provisioned_spills_over_to_on_demand(make_runtime):
    rt = make_runtime(
        spec("Pc", "sleeper.handler", auto_publish_alias="live", provisioned_concurrency=1)
    )
    results = asyncio.run(_at_once(rt, "Pc", 3, {"seconds": 0.3}, "live"))
    kinds = sorted(r.start_kind for r in results)
    assert kinds == ["cold", "cold", "provisioned"]
    assert all(r.version == "1" for r in results)
    spilled = next(r for r in results if r.start_kind == "cold")
    assert spilled.report.init_duration_ms is not None


def test_provisioned_init_is_logged_in_its_stream(make_runtime, state_dir):
    from warmstart.observe.logs import stream_path

    rt = make_runtime(
        spec("Pc", "printer.handler", auto_publish_alias="live", provisioned_concurrency=1)
    )
    rt.flush()
    env = rt.environments("Pc")[0]
    text = stream_path(state_dir, "Pc", env["stream"]).read_text()
    assert text.startswith("INIT_START Runtime Version: ")
    assert "printed during INIT" in text
    assert "INIT_REPORT Init Duration: " in text and "\tPhase: init\tStatus: success" in text


def test_versions_and_aliases(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler", memory_size=128))
    v1 = rt.publish_version("Echo")
    rt.configure("Echo", memory_size=256)
    v2 = rt.publish_version("Echo")
    rt.create_alias("Echo", "prod", v1)
    assert (v1, v2) == ("1", "2")
    assert rt.invoke("Echo", {}, qualifier="prod").payload["context"]["memory_limit_in_mb"] == "128"
    assert rt.invoke("Echo", {}, qualifier="2").payload["context"]["memory_limit_in_mb"] == "256"
    assert rt.invoke("Echo:prod", {}).version == "1"
    with pytest.raises(ResourceNotFoundError):
        rt.create_alias("Echo", "dev", "9")


def test_a_burst_of_cold_starts_beyond_the_start_slots(make_runtime):
    # More cold starts at once than may be starting (fork, cgroups) at once: the rest wait for
    # a slot, and every one of them starts.
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    starts = rt.service.adapter.starts
    n = 4 * starts.slots
    results = asyncio.run(_at_once(rt, "Sleeper", n, {"seconds": 0.3}))
    assert [r.start_kind for r in results] == ["cold"] * n
    assert len(rt.environments("Sleeper")) == n
    assert starts._free == starts.slots
