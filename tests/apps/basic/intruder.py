"""Tries what one function must not do to another (tests/reliability/test_users.py).

Each action answers what it got, or the name of the error that stopped it.
"""

import os
import signal
import tempfile
import time


def _try(job):
    try:
        return job()
    except OSError as e:
        return type(e).__name__


def _escape():
    """Leave the environment's process group and session: double fork, setsid."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            for fd in range(3, 1024):  # a daemon lets go of what it inherited
                if fd != w:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            while True:
                time.sleep(1)
        os._exit(0)
    os.close(w)
    os.wait()
    pid = int(os.read(r, 32))
    os.close(r)
    return pid


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return "written"


def _read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def handler(event, context):
    action = event["action"]
    if action == "whoami":
        return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}
    if action == "secret":
        path = os.path.join(tempfile.gettempdir(), "secret.txt")
        _write(path, "s3cret")
        return path
    if action == "read":
        return _try(lambda: _read(event["path"]))
    if action == "kill":
        return _try(lambda: os.kill(event["pid"], signal.SIGKILL) or "killed")
    if action == "join":
        return _try(lambda: _write(event["path"], str(os.getpid())))
    if action == "escape":
        return _escape()
    raise ValueError(action)
