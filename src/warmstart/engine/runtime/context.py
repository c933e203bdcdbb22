"""The context object handlers receive, shaped like the AWS Python runtime's."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any


class Client:
    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, data: dict[str, Any]) -> None:
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")

    def __repr__(self) -> str:
        return (
            f"Client([installation_id={self.installation_id},app_title={self.app_title},"
            f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}])"
        )


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict[str, Any]) -> None:
        client = data.get("client")
        self.client = Client(client) if client else None
        self.custom = data.get("custom")
        self.env = data.get("env")

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class ContextError(Exception):
    """The client context or identity sent with an invoke is not valid JSON."""

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(f"Unable to parse {what} JSON: {error}")


class LambdaContext:
    """What `context` is inside a handler: request data plus the function's settings."""

    __slots__ = (
        "_epoch_deadline_time_in_ms",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "tenant_id",
    )

    # Read once per environment: Lambda sets these before INIT and they never change.
    _settings: tuple[str | None, ...] | None = None

    @classmethod
    def load_settings(cls) -> None:
        env = os.environ
        cls._settings = (
            env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),  # a string, as in the AWS runtime
            env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        )

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        client_context: bytes = b"",
        identity: bytes = b"",
    ) -> None:
        if self._settings is None:
            self.load_settings()
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = self._settings  # type: ignore[misc]
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        self._epoch_deadline_time_in_ms = deadline_ms
        self.client_context = None
        if client_context:
            try:
                self.client_context = ClientContext(json.loads(client_context))
            except ValueError as e:
                raise ContextError("Client Context", e) from None
        if identity:
            try:
                self.identity = CognitoIdentity(json.loads(identity))
            except ValueError as e:
                raise ContextError("Cognito Identity", e) from None
        else:
            self.identity = CognitoIdentity()

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out (never negative)."""
        return max(self._epoch_deadline_time_in_ms - int(time.time() * 1000), 0)

    def log(self, msg: object) -> None:
        """Write msg to the function's log as is (no newline added), like the AWS runtime."""
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},identity={self.identity},"
            f"tenant_id={self.tenant_id}])"
        )
