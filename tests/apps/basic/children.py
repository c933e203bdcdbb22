"""Starts a child process that keeps writing the time to a file."""

import os
import subprocess
import sys
import time

CHILD = None


def handler(event, context):
    global CHILD
    if CHILD is None:
        CHILD = subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "import os, sys, time\n"
                    "while True:\n"
                    "    open(sys.argv[1] + '.tmp', 'w').write(str(time.time()))\n"
                    "    os.replace(sys.argv[1] + '.tmp', sys.argv[1])  # never half written\n"
                    "    time.sleep(0.005)\n"
                ),
                event["file"],
            ]
        )
        while not os.path.exists(event["file"]):  # until the child is up and writing
            time.sleep(0.005)
    time.sleep(event.get("sleep", 0))  # the child runs while the environment does
    return {"child": CHILD.pid}
