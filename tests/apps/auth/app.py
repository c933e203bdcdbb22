"""Handlers behind authorized and CORS routes, and the authorizers that guard them."""

import json


def echo(event, context):
    """The event back as the JSON body, so tests see what API Gateway passed on."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(event),
    }


def with_cors(event, context):
    """A function that sets its own CORS headers (an HTTP API with CORS replaces them)."""
    return {
        "statusCode": 200,
        "headers": {"Access-Control-Allow-Origin": "*", "X-Request-Id": "r1"},
        "body": "ok",
    }


def _policy(effect, resource, principal="user", context=None):
    out = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context is not None:
        out["context"] = context
    return out


def token(event, context):
    """A TOKEN authorizer: the token says what to answer."""
    kind, _, user = event["authorizationToken"].partition("-")
    arn = event["methodArn"]
    if kind == "allow":  # the whole API (a cached policy is used for its other resources too)
        return _policy(
            "Allow",
            arn.split("/")[0] + "/*",
            user,
            {"user": user, "n": 7, "admin": False, "rid": context.aws_request_id},
        )
    if kind == "deny":
        return _policy("Deny", arn, user)
    if kind == "narrow":  # allows the resource it was asked about, and nothing else
        return _policy("Allow", arn, user)
    if kind == "unauthorized":
        raise Exception("Unauthorized")
    if kind == "broken":
        return {"principalId": user}  # no policy: API Gateway answers 500
    raise RuntimeError("the authorizer failed")


def request(event, context):
    """A REQUEST authorizer: a tenant header and query string parameter."""
    allowed = event["queryStringParameters"].get("tenant") == "acme"
    out = _policy(
        "Allow" if allowed else "Deny",
        event["methodArn"],
        event["headers"]["x-user"],
        {"tenant": event["queryStringParameters"]["tenant"]},
    )
    out["context"]["seen"] = event["type"] + " " + event["httpMethod"] + " " + event["resource"]
    out["context"]["rid"] = context.aws_request_id
    return out


def simple(event, context):
    """An HTTP API authorizer with simple responses (payload 2.0)."""
    ok = event["headers"].get("authorization") == "secret"
    return {
        "isAuthorized": ok,
        "context": {
            "user": "u1",
            "roles": ["a", "b"],
            "route": event["routeKey"],
            "rid": context.aws_request_id,
        },
    }
