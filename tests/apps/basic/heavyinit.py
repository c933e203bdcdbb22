"""A heavy INIT (imports and work at module level, as a framework's is), then CPU-bound work in
every invocation."""

import asyncio  # noqa: F401
import decimal  # noqa: F401
import email.mime.multipart  # noqa: F401
import http.server  # noqa: F401
import json
import logging.config  # noqa: F401
import os
import urllib.request  # noqa: F401
import xml.dom.minidom  # noqa: F401

TABLE = {i: str(i * i) for i in range(int(os.environ.get("INIT_WORK", "300000")))}


def handler(event, context):
    total = 0
    for i in range(event.get("n", 100_000)):
        total += i * i
    return json.dumps({"total": total, "table": len(TABLE)})
