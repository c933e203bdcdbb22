"""Writes to stdout, stderr, the logging module and fd 1 directly."""

import logging
import os
import sys

print("printed during INIT")
logger = logging.getLogger("app")


def handler(event, context):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.warning("a warning with %s", "args")
    logging.info("info is below the default level")
    logger.error("from a named logger")
    os.write(1, b"raw fd write\n")
    context.log("context.log line\n")
    return "done"
