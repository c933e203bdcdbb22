"""Lambda API input checked against botocore's model, in AWS's message shape."""

from __future__ import annotations

import pytest

from warmstart.errors import InvalidParameterValueError
from warmstart.frontdoor.validation import check_environment, check_input


def refused(*args: object) -> str:
    with pytest.raises(InvalidParameterValueError) as e:
        check_input(*args)  # type: ignore[arg-type]
    return str(e.value)


def test_members_come_from_where_the_model_puts_them():
    given = check_input(
        "ListAliases",
        {"FunctionName": "ignored: it is a path parameter"},
        {"FunctionName": "Hello"},
        {"FunctionVersion": "3", "MaxItems": "10", "Unknown": "x"},
    )
    assert given == {"FunctionName": "Hello", "FunctionVersion": "3", "MaxItems": 10}


def test_one_error_in_aws_words():
    assert refused(
        "PutFunctionConcurrency", {"ReservedConcurrentExecutions": -1}, {"FunctionName": "F"}, {}
    ) == (
        "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to "
        "satisfy constraint: Member must have value greater than or equal to 0"
    )


def test_every_error_at_once():
    message = refused(
        "CreateFunction",
        {"FunctionName": "F", "MemorySize": 64, "Architectures": ["x86"], "Timeout": "3"},
        {},
        {},
    )
    assert message.startswith("5 validation errors detected: ")
    for part in (
        "Value null at 'role' failed to satisfy constraint: Member must not be null",
        "Value null at 'code'",
        "Value '3' at 'timeout' failed to satisfy constraint: Member must be an integer",
        "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value "
        "greater than or equal to 128",
        "Value '[x86]' at 'architectures' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
    ):
        assert part in message


def test_lambdas_own_limits_are_tighter_than_the_model():
    body = {"MemorySize": 10241, "Timeout": 901, "EphemeralStorage": {"Size": 10241}}
    message = refused("UpdateFunctionConfiguration", body, {"FunctionName": "F"}, {})
    assert "less than or equal to 10240" in message and "less than or equal to 900" in message
    assert "'10241' at 'ephemeralStorage.size'" in message


def test_sensitive_values_are_not_repeated():
    body = {"Environment": {"Variables": {"1X": "secret", "OK": 5}}}
    message = refused("UpdateFunctionConfiguration", body, {"FunctionName": "F"}, {})
    assert "secret" not in message
    assert (
        "Value at 'environment.variables' failed to satisfy constraint: Map keys must " in message
    )
    assert "Map value must satisfy constraint: [Member must be a string]" in message


def test_types_are_not_coerced():
    for value in (True, 1.0, "1", None, [1]):
        body = {"ReservedConcurrentExecutions": value}
        message = refused("PutFunctionConcurrency", body, {"FunctionName": "F"}, {})
        assert "reservedConcurrentExecutions" in message


def test_deep_values_in_a_message_are_elided():
    deep: object = "x"
    for _ in range(900):
        deep = [deep]
    message = refused("UpdateFunctionConfiguration", {"Handler": deep}, {"FunctionName": "F"}, {})
    assert "[[[[[[[[[...]]]]]]]]]" in message


def test_environment_rules_lambda_adds():
    check_environment({"GREETING": "hi"})
    with pytest.raises(InvalidParameterValueError, match="Reserved keys used in this request: "
                       "AWS_REGION, _HANDLER"):  # fmt: skip
        check_environment({"AWS_REGION": "x", "OK": "y", "_HANDLER": "z"})
    check_environment({"AB": "x" * 4087})  # {"AB":"x..."}: 4096 bytes
    with pytest.raises(InvalidParameterValueError, match="exceeded the 4KB limit"):
        check_environment({"AB": "x" * 4088})
