import os
import time

time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def handler(event, context):
    return "ready"
