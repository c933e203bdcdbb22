"""Per-environment cgroups: create, enter, and clean up after the process is gone.

The pool decides the paths and limits (see warmstart.engine.limits); this module only does the
file writes, so that the environment itself (entering) and the zygote (cleaning up) share them.
A spec is a dict: {"version": 1 | 2, "dirs": {controller: path} (v1) or "dir": path (v2),
"cpu_quota_us": int (-1 = unlimited), "init_cpu_quota_us": int (the same, during INIT),
"cpu_period_us": int, "memory_bytes": int, "pids_max": int}.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

# While an environment runs INIT its CPU weight is the lowest there is: on Lambda a new
# environment initializes on hardware of its own, and a burst of cold starts does not slow the
# warm environments down. Here they share the cores, and hundreds of INITs at the default weight
# would starve the warm ones, making them late, which starts yet more environments. Its CPU
# quota is INIT's (Lambda does not hold INIT to the memory share) until `init_done` gives it
# the share its memory size buys.
INIT_SHARES = 2  # cgroup v1 cpu.shares (default 1024)
INIT_WEIGHT = 1  # cgroup v2 cpu.weight (default 100)


def _write(path: str, value: object) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _try_write(path: str, value: object) -> None:
    try:
        _write(path, value)
    except OSError:
        pass


def _dirs(spec: dict[str, Any]) -> list[str]:
    if spec["version"] == 1:
        return list(spec["dirs"].values())
    return [spec["dir"]]


def create(spec: dict[str, Any]) -> None:
    """Make the environment's cgroup directories and set their limits."""
    mem = spec["memory_bytes"]
    if spec["version"] == 1:
        d = spec["dirs"]
        for path in d.values():
            os.makedirs(path, exist_ok=True)
        if "cpu" in d:
            _try_write(os.path.join(d["cpu"], "cpu.shares"), INIT_SHARES)
            _write(os.path.join(d["cpu"], "cpu.cfs_period_us"), spec["cpu_period_us"])
            _write(os.path.join(d["cpu"], "cpu.cfs_quota_us"), _init_quota(spec))
        if "memory" in d:
            _write(os.path.join(d["memory"], "memory.limit_in_bytes"), mem)
            # Without this the limit only pushes the environment into swap instead of OOM.
            _try_write(os.path.join(d["memory"], "memory.memsw.limit_in_bytes"), mem)
            _try_write(os.path.join(d["memory"], "memory.swappiness"), 0)
        if "pids" in d:
            _write(os.path.join(d["pids"], "pids.max"), spec["pids_max"])
    else:
        path = spec["dir"]
        os.makedirs(path, exist_ok=True)
        _try_write(os.path.join(path, "cpu.weight"), INIT_WEIGHT)
        _write(os.path.join(path, "cpu.max"), _cpu_max(_init_quota(spec), spec))
        _write(os.path.join(path, "memory.max"), mem)
        _try_write(os.path.join(path, "memory.swap.max"), 0)
        _write(os.path.join(path, "pids.max"), spec["pids_max"])


def _init_quota(spec: dict[str, Any]) -> int:
    return int(spec.get("init_cpu_quota_us", spec["cpu_quota_us"]))


def _cpu_max(quota: int, spec: dict[str, Any]) -> str:
    return f"{'max' if quota < 0 else quota} {spec['cpu_period_us']}"


def init_done(spec: dict[str, Any] | None) -> None:
    """INIT is over: the environment's full CPU weight (see INIT_SHARES), and the CPU share its
    memory size buys. Written by the pool: the environment's own user may not."""
    if not spec:
        return
    quota = spec["cpu_quota_us"]
    changed = quota != _init_quota(spec)
    if spec["version"] == 1:
        cpu = spec["dirs"].get("cpu")
        if cpu:
            _try_write(os.path.join(cpu, "cpu.shares"), 1024)
            if changed:
                _try_write(os.path.join(cpu, "cpu.cfs_quota_us"), quota)
    else:
        _try_write(os.path.join(spec["dir"], "cpu.weight"), 100)
        if changed:
            _try_write(os.path.join(spec["dir"], "cpu.max"), _cpu_max(quota, spec))


def lift(spec: dict[str, Any] | None) -> None:
    """Remove the CPU and memory limits (a SnapStart snapshot process, once INIT is done)."""
    if not spec:
        return
    init_done(spec)  # the default CPU weight
    if spec["version"] == 1:
        d = spec["dirs"]
        if "cpu" in d:
            _try_write(os.path.join(d["cpu"], "cpu.cfs_quota_us"), -1)
        if "memory" in d:  # memory+swap may never be below memory: raise it first
            _try_write(os.path.join(d["memory"], "memory.memsw.limit_in_bytes"), -1)
            _try_write(os.path.join(d["memory"], "memory.limit_in_bytes"), -1)
    else:
        _try_write(os.path.join(spec["dir"], "cpu.max"), f"max {spec['cpu_period_us']}")
        _try_write(os.path.join(spec["dir"], "memory.max"), "max")


def enter(spec: dict[str, Any] | None) -> None:
    """Create the cgroups and move the calling process into them (before the handler's INIT)."""
    if not spec:
        return
    create(spec)
    pid = os.getpid()
    for path in _dirs(spec):
        _write(os.path.join(path, "cgroup.procs"), pid)


def place(spec: dict[str, Any] | None, pid: int) -> None:
    """Create an environment's cgroups at full CPU weight and move `pid` into them (a SnapStart
    restore, placed by the pool: it runs as its snapshot's user, which may not)."""
    if not spec:
        return
    create(spec)
    init_done(spec)
    for path in _dirs(spec):
        _write(os.path.join(path, "cgroup.procs"), pid)


def join(paths: list[str]) -> None:
    """Move the calling process into existing cgroups, where allowed (the zygote's spawn group)."""
    pid = os.getpid()
    for path in paths:
        _try_write(os.path.join(path, "cgroup.procs"), pid)


def oom_killed(spec: dict[str, Any]) -> bool:
    """Whether the kernel's OOM killer fired in the environment's memory cgroup."""
    if spec["version"] == 1:
        path = spec["dirs"].get("memory")
        name = "memory.oom_control"
    else:
        path = spec["dir"]
        name = "memory.events"
    if not path:
        return False
    try:
        with open(os.path.join(path, name)) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value) > 0
    except OSError:
        pass
    return False


def procs(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def remove_dir(path: str, timeout: float = 2.0) -> bool:
    """Kill every process in a (leaf) cgroup and remove it; False if it would not go."""
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        for pid in procs(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(path)
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)  # killed tasks leave the cgroup asynchronously
    return True


def remove(spec: dict[str, Any] | None, timeout: float = 2.0) -> bool:
    """Kill whatever is left in the environment's cgroups and remove them.

    Returns whether the environment was OOM-killed (read before the cgroup goes away).
    """
    if not spec:
        return False
    oom = oom_killed(spec)
    for path in _dirs(spec):
        remove_dir(path, timeout)
    return oom
