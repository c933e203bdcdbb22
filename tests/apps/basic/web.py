"""Handlers behind API Gateway routes."""

import base64
import json


def echo(event, context):
    """The event back as the JSON body, so tests can see what API Gateway sent."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(event),
    }


def shapes(event, context):
    path = event.get("rawPath") or event.get("path")
    if path.endswith("/plain"):
        return {"hello": "world"}  # no statusCode: HTTP APIs infer a 200
    if path.endswith("/text"):
        return "just text"
    if path.endswith("/binary"):
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": base64.b64encode(b"\x89PNG\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    if path.endswith("/cookies"):
        return {
            "statusCode": 201,
            "cookies": ["a=1; Path=/", "b=2"],
            "multiValueHeaders": {"X-Multi": ["one", "two"]},
            "body": "made",
        }
    if path.endswith("/raise"):
        raise RuntimeError("route failed")
    return {"statusCode": "teapot"}  # not a valid response: 502
