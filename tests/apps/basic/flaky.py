"""Fails every other cold start: INIT counts them in a file (FLAKY_COUNTER) and raises on odd ones."""

import os

path = os.environ["FLAKY_COUNTER"]
try:
    with open(path) as f:
        count = int(f.read() or 0)
except FileNotFoundError:
    count = 0
with open(f"{path}.{os.getpid()}", "w") as f:  # each environment is a user of its own:
    f.write(str(count + 1))  # a new file, put in place, rather than another's rewritten
os.replace(f"{path}.{os.getpid()}", path)
if count % 2:
    raise RuntimeError(f"cold start {count + 1} fails")


def handler(event, context):
    return event.get("name", "ok")
