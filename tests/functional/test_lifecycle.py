"""Environment lifecycle: reaping, lifetime, configuration changes, and never a leaked process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import BASIC, PY, process_gone, spec, wait_for


def test_idle_environments_are_reaped(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"), idle_timeout_s=0.3)
    rt.invoke("Noop", {})
    pid = rt.environments()[0]["pid"]
    assert wait_for(lambda: rt.environments() == [], timeout=3)
    assert wait_for(lambda: process_gone(pid))
    assert rt.invoke("Noop", {}).start_kind == "cold"


def test_busy_environments_are_not_reaped(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"), idle_timeout_s=0.2)
    assert rt.invoke("Sleeper", {"seconds": 0.6}).payload["slept"] == 0.6


def test_maximum_lifetime(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"), max_lifetime_s=0.3)
    first = rt.invoke("Noop", {})
    time.sleep(0.05)
    assert rt.invoke("Noop", {}).environment_id == first.environment_id
    time.sleep(0.4)
    assert rt.invoke("Noop", {}).start_kind == "cold"


def test_configure_replaces_environments(make_runtime):
    rt = make_runtime(spec("Echo", "echo.handler"))
    before = rt.invoke("Echo", {})
    pid = before.payload["pid"]
    spec_after = rt.configure("Echo", memory_size=512, timeout=9, environment={"MODE": "new"})
    assert (spec_after.memory_size, spec_after.timeout) == (512, 9)
    after = rt.invoke("Echo", {})
    assert after.start_kind == "cold"
    assert after.payload["context"]["memory_limit_in_mb"] == "512"
    assert after.payload["env"]["MODE"] == "new"
    assert wait_for(lambda: process_gone(pid))


def test_configure_validates(make_runtime):
    from warmstart import SpecError

    rt = make_runtime(spec("Echo", "echo.handler"))
    with pytest.raises(SpecError, match=r"MemorySize: 64 is outside 128\.\.10240"):
        rt.configure("Echo", memory_size=64)
    assert rt.function("Echo").memory_size == 128


def test_recycle_forces_a_cold_start(make_runtime):
    rt = make_runtime(spec("Noop", "noop.handler"))
    rt.invoke("Noop", {})
    assert rt.recycle("Noop") == 1
    assert rt.invoke("Noop", {}).start_kind == "cold"


def test_recycle_while_busy_discards_after_the_invocation(make_runtime):
    rt = make_runtime(spec("Sleeper", "sleeper.handler"))
    rt.invoke("Sleeper", {"seconds": 0})
    t = threading.Thread(target=rt.invoke, args=("Sleeper", {"seconds": 0.3}))
    t.start()
    time.sleep(0.1)
    rt.recycle("Sleeper")
    t.join()
    assert rt.environments() == []


def test_close_leaves_nothing_running(make_runtime):
    # make_runtime checks after the test that every process and cgroup is gone; here an
    # environment is frozen, one is busy in a long sleep, and one is in INIT when we close.
    rt = make_runtime(
        spec("Threads", "threads.handler"),
        spec("Sleeper", "sleeper.handler"),
        spec("Slow", "initslow.handler", environment={"INIT_SLEEP": "30"}, timeout=60),
    )
    rt.invoke("Threads", {})
    results = []
    for name, ev in (("Sleeper", {"seconds": 30}), ("Slow", {})):
        threading.Thread(
            target=lambda n=name, e=ev: results.append(rt.invoke(n, e)), daemon=True
        ).start()
    assert wait_for(
        lambda: len(rt.environments()) == 3 and all(e["pid"] for e in rt.environments())
    )
    pids = [e["pid"] for e in rt.environments()]
    rt.close()
    assert all(wait_for(lambda p=p: process_gone(p)) for p in pids)


OWNER = (
    textwrap.dedent("""
    import json, sys, threading, time
    from warmstart import FunctionSpec, Runtime
    specs = [FunctionSpec(n, h, __CODE__, runtime=__PY__, timeout=60)
             for n, h in (("Threads", "threads.handler"), ("Sleeper", "sleeper.handler"))]
    rt = Runtime(specs, state_dir=sys.argv[1])
    rt.invoke("Threads", {})
    threading.Thread(target=rt.invoke, args=("Sleeper", {"seconds": 60}), daemon=True).start()
    while len([e for e in rt.environments() if e["pid"]]) < 2:
        time.sleep(0.01)
    zygotes = [s.pid for s in rt.service.adapter._servers.values()]
    print(json.dumps({"pids": [e["pid"] for e in rt.environments()] + zygotes,
                      "cgroups": [str(p) for p in rt.service.isolation.paths()],
                      "work_dir": rt.service.work_dir}), flush=True)
    with rt:
        time.sleep(60)
""")
    .replace("__CODE__", repr(str(BASIC)))
    .replace("__PY__", repr(PY))
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killing_the_owner_leaves_nothing_behind(tmp_path, sig):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert all(not process_gone(p) for p in info["pids"])
        proc.send_signal(sig)
        proc.wait(10)
        for pid in info["pids"]:
            assert wait_for(lambda pid=pid: process_gone(pid), 10), f"pid {pid} survived"
        assert wait_for(lambda: not any(Path(p).exists() for p in info["cgroups"]), 5)
        assert wait_for(lambda: not os.path.exists(info["work_dir"]), 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_code_change_replaces_environments(make_runtime, tmp_path):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=tmp_path))
    assert rt.invoke("App", {}).payload == 1
    assert rt.invoke("App", {}).start_kind == "warm"
    time.sleep(1.2)  # the first check records what the code looks like
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 2\n")
    assert wait_for(lambda: rt.environments() == [], timeout=5)
    res = rt.invoke("App", {})
    assert (res.payload, res.start_kind) == (2, "cold")


def test_an_edit_right_after_the_first_cold_start_is_a_change_too(make_runtime, tmp_path):
    # Before the watch's first look at the files: they are compared with when the environment
    # that read them started.
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=tmp_path))
    assert rt.invoke("App", {}).payload == 1
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 2\n")
    assert wait_for(lambda: rt.environments() == [], timeout=5)
    assert rt.invoke("App", {}).payload == 2


def test_code_changes_can_be_ignored(make_runtime, tmp_path):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=tmp_path), watch_code=False)
    rt.invoke("App", {})
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 2\n")
    time.sleep(2.5)
    res = rt.invoke("App", {})
    assert (res.payload, res.start_kind) == (1, "warm")


def test_spawns_queue_while_the_zygote_is_behind(make_runtime, tmp_path):
    # A zygote that takes no requests (stopped) with a small socket buffer: spawn() must not
    # block its caller. What does not fit waits for the spawn thread, and all of it is sent
    # once the zygote reads again.
    rt = make_runtime(spec("Hello", "noop.handler"))
    rt.invoke("Hello", {})
    server = rt.service.adapter.server(PY)
    server._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    os.kill(server.pid, signal.SIGSTOP)
    exits = []
    try:
        started = time.monotonic()
        for i in range(100):
            r, w = os.pipe()
            # A config the child cannot start with: it exits at once, which is all we need.
            config = {"tmp_dir": str(tmp_path / str(i))}
            exits.append(server.spawn(f"bogus-{i}", config, [r, w, os.dup(w)]))
        assert time.monotonic() - started < 2.0
        assert server._sender is not None and server._backlog  # the rest is queued
    finally:
        os.kill(server.pid, signal.SIGCONT)
    for fut in exits:
        assert fut.result(timeout=30).code != 0
    assert not server._backlog
    assert rt.invoke("Hello", {}).payload == {"hello": "world"}


def test_an_edit_replaces_only_the_environments_that_run_the_edited_code(make_runtime, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, value in ((one, 1), (two, 2)):
        folder.mkdir()
        folder.chmod(0o755)
        (folder / "app.py").write_text(f"def handler(event, context):\n    return {value}\n")
    rt = make_runtime(spec("App", "app.handler", code_dir=one))
    rt.publish_version("App")  # version 1 runs folder one
    rt.configure("App", code_dir=two)  # $LATEST runs folder two (as after UpdateFunctionCode)
    assert (rt.invoke("App", {}).payload, rt.invoke("App", {}, "1").payload) == (2, 1)
    time.sleep(1.2)  # the watch has looked at them
    (two / "app.py").write_text("def handler(event, context):\n    return 3\n")
    assert wait_for(lambda: [e["version"] for e in rt.environments()] == ["1"], timeout=5)
    assert rt.invoke("App", {}).payload == 3
    assert rt.invoke("App", {}, "1").start_kind == "warm"
