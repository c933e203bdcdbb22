"""Imports a few standard-library packages during INIT, for `warmstart bench cold`."""

import decimal  # noqa: F401
import email.parser  # noqa: F401
import http.client  # noqa: F401
import json


def handler(event, context):
    return json.dumps(event)
