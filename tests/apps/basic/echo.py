"""Returns what the handler sees: its event, context, environment and process."""

import os
import sys
import tempfile

CALLS = 0  # module globals live as long as the environment


def handler(event, context):
    global CALLS
    CALLS += 1
    return {
        "event": event,
        "calls": CALLS,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "tmp": tempfile.gettempdir(),
        "sys_path": sys.path,
        "python": list(sys.version_info[:2]),
        "env": dict(os.environ),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "identity": [
                context.identity.cognito_identity_id,
                context.identity.cognito_identity_pool_id,
            ],
            "client_context": None
            if context.client_context is None
            else {
                "custom": context.client_context.custom,
                "env": context.client_context.env,
                "installation_id": context.client_context.client.installation_id
                if context.client_context.client
                else None,
            },
        },
    }
