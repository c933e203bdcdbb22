"""SnapStart: hooks in both forms, state made in INIT, random draws, a file in /tmp."""

import os
import random
import tempfile

from snapshot_restore_py import register_after_restore, register_before_snapshot

ORDER: list[str] = []
INIT_PID = os.getpid()
INIT_DRAW = random.random()  # drawn in INIT: the same in every restore, as on Lambda
SHARED = random.Random(7)  # a generator made in INIT: shared too
with open(os.path.join(tempfile.gettempdir(), "init.txt"), "w") as f:
    f.write("written in INIT")


@register_before_snapshot
def first_before():
    ORDER.append("before-1")


def second_before(tag, *, suffix=""):
    ORDER.append(f"before-2{tag}{suffix}")


register_before_snapshot(second_before, ":", suffix="!")


@register_after_restore
def first_after():
    ORDER.append("after-1")
    print("restored in", os.getpid())


register_after_restore(ORDER.append, "after-2")

if os.environ.get("FAIL_AFTER_RESTORE"):
    register_after_restore(lambda: 1 / 0)


def handler(event, context):
    with open(os.path.join(tempfile.gettempdir(), "init.txt")) as f:
        tmp = f.read()
    return {
        "order": ORDER,
        "init_pid": INIT_PID,
        "pid": os.getpid(),
        "init_draw": INIT_DRAW,
        "draw": random.random(),
        "shared_draw": SHARED.random(),
        "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "context_stream": context.log_stream_name,
        "tmpdir": tempfile.gettempdir(),
        "tmp": tmp,
    }
