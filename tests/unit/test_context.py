"""The context object, as the AWS Python runtime builds it."""

from __future__ import annotations

import time

import pytest

from warmstart.engine.runtime.context import ContextError, LambdaContext


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch):
    for k, v in {
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/F",
        "AWS_LAMBDA_LOG_STREAM_NAME": "s",
        "AWS_LAMBDA_FUNCTION_NAME": "F",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }.items():
        monkeypatch.setenv(k, v)
    LambdaContext.load_settings()
    yield
    LambdaContext._settings = None


def test_attributes_and_remaining_time():
    deadline = int(time.time() * 1000) + 3000
    ctx = LambdaContext("rid", deadline, "arn:aws:lambda:us-east-1:1:function:F")
    assert (ctx.function_name, ctx.memory_limit_in_mb, ctx.function_version) == (
        "F",
        "128",
        "$LATEST",
    )
    assert (ctx.log_group_name, ctx.log_stream_name) == ("/aws/lambda/F", "s")
    assert 2900 < ctx.get_remaining_time_in_millis() <= 3000
    assert ctx.client_context is None
    assert ctx.identity.cognito_identity_id is None
    assert LambdaContext("r", 0, "a").get_remaining_time_in_millis() == 0
    assert repr(ctx).startswith("LambdaContext([aws_request_id=rid,log_group_name=/aws/lambda/F,")


def test_client_context_and_identity():
    ctx = LambdaContext(
        "r",
        0,
        "a",
        b'{"client": {"app_title": "t"}, "custom": {"k": 1}}',
        b'{"cognitoIdentityId": "i", "cognitoIdentityPoolId": "p"}',
    )
    assert ctx.client_context.client.app_title == "t"
    assert ctx.client_context.custom == {"k": 1} and ctx.client_context.env is None
    assert (ctx.identity.cognito_identity_id, ctx.identity.cognito_identity_pool_id) == ("i", "p")
    with pytest.raises(ContextError, match="Unable to parse Client Context JSON"):
        LambdaContext("r", 0, "a", b"{nope")
