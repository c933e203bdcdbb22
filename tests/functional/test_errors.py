"""Function errors, shaped exactly as the AWS Python runtime and Lambda shape them."""

from __future__ import annotations

import re

import pytest

from conftest import spec
from warmstart import FunctionSpec


def test_handler_exception(make_runtime):
    rt = make_runtime(spec("Raiser", "raiser.handler"))
    res = rt.invoke("Raiser", {"id": 7})
    assert res.function_error == "Unhandled" and res.error_type == "OrderError"
    err = res.payload
    assert list(err) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert err["errorMessage"] == "bad order 7"
    assert err["errorType"] == "OrderError"
    assert err["requestId"] == res.request_id
    # Frames of the user's code only, formatted like traceback.format_list.
    assert len(err["stackTrace"]) == 2
    assert re.match(
        r'^  File ".*raiser\.py", line 6, in handler\n    helper\(event\)\n$', err["stackTrace"][0]
    )
    assert "raise OrderError" in err["stackTrace"][1]
    # Logged as the runtime logs it; the REPORT line has no Status for a handler error.
    lines = res.log.splitlines()
    at = lines.index("[ERROR] OrderError: bad order 7")
    assert lines[at + 1] == "Traceback (most recent call last):"
    assert lines[at + 2].startswith("\u00a0\u00a0File ")  # indented with no-break spaces
    assert "Status" not in res.report.line() and res.report.status == "success"
    # The environment survives a handled error: the next invocation is warm.
    assert rt.invoke("Raiser", {"id": 8}).start_kind == "warm"


@pytest.mark.parametrize(
    "handler, error_type, message",
    [
        (
            "noperiod",
            "Runtime.MalformedHandlerName",
            "Bad handler 'noperiod': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "badimport.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'badimport': No module named 'nonexistent_module_for_warmstart_tests'",
        ),
        (
            "nosuchmodule.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nosuchmodule': No module named 'nosuchmodule'",
        ),
        (
            "badsyntax.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'badsyntax': expected ':' (badsyntax.py, line 1)",
        ),
        ("noop.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'noop'"),
        (
            "sys.handler",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
        ("initcrash.handler", "RuntimeError", "cannot connect to the database"),
    ],
)
def test_init_errors_come_back_with_every_invocation(make_runtime, handler, error_type, message):
    rt = make_runtime(spec("Broken", handler))
    for _ in range(2):  # each attempt starts a new environment and fails the same way
        res = rt.invoke("Broken", {})
        assert res.start_kind == "cold"
        assert res.function_error == "Unhandled" and res.error_type == error_type
        assert res.payload["errorType"] == error_type
        if "syntax" in handler:  # the wording of SyntaxError varies between Python versions
            assert res.payload["errorMessage"].startswith("Syntax error in module 'badsyntax': ")
        else:
            assert res.payload["errorMessage"] == message
        assert res.payload["requestId"] == ""  # init errors carry no request id
        assert res.report.status == "error" and res.report.error_type == error_type
        assert res.report.init_duration_ms is None
        assert f"\tStatus: error\tError Type: {error_type}" in res.log
        assert re.search(
            rf"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: error\t"
            rf"Error Type: {re.escape(error_type)}",
            res.log,
        )
        assert "LAMBDA_WARNING: Unhandled exception." in res.log
    assert rt.environments() == []


def test_init_exit(make_runtime):
    rt = make_runtime(spec("Quits", "initexit.handler"))
    res = rt.invoke("Quits", {})
    assert res.error_type == "Runtime.ExitError"
    assert res.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {res.request_id} Error: Runtime exited with error: "
        "exit status 2",
    }
    assert "giving up during INIT" in res.log


def test_marshal_error(make_runtime):
    rt = make_runtime(spec("Set", "results.not_json"))
    res = rt.invoke("Set", {})
    assert res.error_type == "Runtime.MarshalError"
    assert (
        res.payload["errorMessage"]
        == "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert res.payload["stackTrace"] == []


def test_response_too_large(make_runtime):
    rt = make_runtime(spec("Big", "results.too_big", memory_size=512))
    res = rt.invoke("Big", {})
    assert res.error_type == "Function.ResponseSizeTooLarge"
    assert (
        "Response payload size exceeded maximum allowed payload size" in res.payload["errorMessage"]
    )


@pytest.mark.parametrize(
    "event, message",
    [
        ({"how": "sys.exit", "code": 3}, "Runtime exited with error: exit status 3"),
        ({"how": "sys.exit", "code": 0}, "Runtime exited without providing a reason"),
        ({"how": "os._exit", "code": 4}, "Runtime exited with error: exit status 4"),
        (
            {"how": "signal", "signal": "SIGSEGV"},
            "Runtime exited with error: signal: segmentation fault",
        ),
        ({"how": "signal", "signal": "SIGKILL"}, "Runtime exited with error: signal: killed"),
    ],
)
def test_process_exit_is_an_exit_error(make_runtime, event, message):
    rt = make_runtime(spec("Exits", "exiter.handler"))
    rt.invoke("Exits", {"how": "nothing"})
    res = rt.invoke("Exits", event)
    assert res.function_error == "Unhandled" and res.error_type == "Runtime.ExitError"
    assert res.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {res.request_id} Error: {message}",
    }
    assert "about to exit" in res.log  # output written before the crash is kept
    assert f"RequestId: {res.request_id} Error: {message}\nRuntime.ExitError\n" in res.log
    assert res.report.line().endswith("\tStatus: error\tError Type: Runtime.ExitError")
    # The environment is replaced: the next invocation is a cold start.
    assert rt.invoke("Exits", {"how": "nothing"}).start_kind == "cold"


def test_bad_event_and_oversized_requests(make_runtime):
    from warmstart import InvalidRequestContentError, RequestTooLargeError

    rt = make_runtime(spec("Noop", "noop.handler"))
    with pytest.raises(InvalidRequestContentError):
        rt.invoke("Noop", {"when": object()})
    with pytest.raises(RequestTooLargeError):
        rt.invoke("Noop", b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    with pytest.raises(InvalidRequestContentError, match="Could not parse payload into json"):
        rt.invoke("Noop", b"{not json")  # refused before it reaches an environment, as on AWS


def test_unknown_functions_and_qualifiers(make_runtime):
    from warmstart import ResourceNotFoundError

    rt = make_runtime(spec("Noop", "noop.handler"))
    with pytest.raises(ResourceNotFoundError, match="Function not found: arn:aws:lambda:"):
        rt.invoke("Nope", {})
    with pytest.raises(ResourceNotFoundError):
        rt.invoke("Noop", {}, qualifier="7")
    # Names, partial and full ARNs all work.
    for name in (
        "Noop",
        "123456789012:function:Noop",
        "arn:aws:lambda:us-east-1:123456789012:function:Noop",
        "arn:aws:lambda:us-east-1:123456789012:function:Noop:$LATEST",
    ):
        assert rt.invoke(name, {}).payload == {"hello": "world"}


def test_unsupported_runtime_is_refused_at_invoke(make_runtime):
    from warmstart import UnsupportedRuntimeError

    node = FunctionSpec("Node", "index.handler", spec("x", "y").code_dir, runtime="nodejs20.x")
    rt = make_runtime(node, spec("Noop", "noop.handler"))
    assert any("nodejs20.x is not supported" in w for w in rt.warnings)
    with pytest.raises(UnsupportedRuntimeError):
        rt.invoke("Node", {})
    assert rt.invoke("Noop", {}).payload == {"hello": "world"}
