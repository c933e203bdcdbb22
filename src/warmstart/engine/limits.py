"""How environments are held to their MemorySize and its share of CPU on this machine.

Three strategies, detected at start-up and named in one line for the user:
- cgroup v1 (cpu, memory, pids controllers): CPU bandwidth via cpu.cfs_quota_us, memory limit
  with the kernel's OOM killer;
- cgroup v2 (cpu.max, memory.max, pids.max) under the root cgroup or a delegated one;
- none: no CPU throttling; memory enforced by a watchdog on the environment's RSS.
Freezing idle environments does not use the cgroup freezer on any of them: SIGSTOP/SIGCONT of
the environment's process group does the same job in ~3 us where a v1 freezer transition takes
~350 us on this kind of machine, and it works without cgroup access.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EngineError
from .runtime import cgroups

__all__ = [
    "CPU_PERIOD_US",
    "INIT_VCPUS",
    "MB_PER_VCPU",
    "Isolation",
    "detect",
    "vcpus_for",
]

MB_PER_VCPU = 1769  # Lambda: 1,769 MB = 1 vCPU
MAX_VCPUS = 6
# CPU bandwidth is granted per period. Long periods make short CPU-bound invocations at small
# memory sizes bimodal (all of a period's quota at full speed, then a long stall); 20 ms keeps the
# slowdown proportional to memory even for work of a few tens of milliseconds, and is the
# shortest period at which 128 MB's quota (0.07 vCPU) stays above the kernel's 1 ms minimum.
CPU_PERIOD_US = 20_000
PIDS_MAX = 1024  # Lambda: 1,024 processes/threads per environment
# INIT is not held to the memory share: Lambda runs it with unthrottled vCPUs, about two, up to
# ~3 GB (Python's Init Duration is flat from 128 to 1,024 MB); above that the share is larger.
INIT_VCPUS = 2.0
MODES = ("auto", "cgroup", "cgroup-v1", "cgroup-v2", "none")


def vcpus_for(memory_mb: int, cores: int | None = None) -> float:
    """The vCPU share Lambda gives a memory size, capped at 6 and at this machine's cores."""
    cores = cores or os.cpu_count() or 1
    return min(memory_mb / MB_PER_VCPU, MAX_VCPUS, float(cores))


@dataclass
class Isolation:
    """The active strategy and how to build an environment's limits under it."""

    mode: str  # "cgroup-v1" | "cgroup-v2" | "none"
    reason: str = ""  # why cgroups are not used, in "none" mode
    dirs: dict[str, Path] = field(default_factory=dict)  # v1: controller -> our parent cgroup
    root: Path | None = None  # v2: our parent cgroup
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    # The zygotes wait in `spawn`, at the lowest CPU weight, so that an environment is below
    # warmstart's own threads from its fork on (not only once INIT starts in its own cgroup):
    # a burst of cold starts then does not take the cores from the event loop, whose lateness
    # starts yet more environments. They leave for `home` (warmstart's own cgroup) to clean up.
    spawn: list[Path] = field(default_factory=list)
    home: list[Path] = field(default_factory=list)
    # As root, each environment runs as a user of its own (engine/runtime/sandbox.py).
    users: bool = field(default_factory=lambda: os.geteuid() == 0)

    @property
    def cgroups(self) -> bool:
        return self.mode != "none"

    def describe(self) -> str:
        """One line for the start-up message."""
        if self.cgroups:
            limits = (
                f"isolation: cgroup v{self.mode[-1]} (CPU share per memory size, memory limit, "
                "1024 processes)"
            )
        else:
            limits = (
                f"isolation: none ({self.reason}): CPU not throttled, memory enforced by an RSS "
                "watchdog"
            )
        users = (
            "each environment runs as a user of its own"
            if self.users
            else "environments run as warmstart's own user"
        )
        return f"{limits}; {users}; idle environments frozen with SIGSTOP"

    def cpu_throttled(self, memory_mb: int) -> bool:
        return self.cgroups and vcpus_for(memory_mb, self.cores) < self.cores

    def env_spec(self, env_id: str, memory_mb: int) -> dict[str, Any] | None:
        """The cgroup spec (see engine/runtime/cgroups.py) for a new environment, or None."""
        if not self.cgroups:
            return None
        share = vcpus_for(memory_mb, self.cores)
        spec: dict[str, Any] = {
            "cpu_quota_us": self._quota(share),  # from the first invocation on
            "init_cpu_quota_us": self._quota(max(share, INIT_VCPUS)),
            "cpu_period_us": CPU_PERIOD_US,
            "memory_bytes": memory_mb << 20,
            "pids_max": PIDS_MAX,
        }
        if self.mode == "cgroup-v1":
            spec["version"] = 1
            spec["dirs"] = {c: str(p / env_id) for c, p in self.dirs.items()}
        else:
            assert self.root is not None
            spec["version"] = 2
            spec["dir"] = str(self.root / env_id)
        return spec

    def _quota(self, vcpus: float) -> int:
        """CPU bandwidth per period for a vCPU share; -1 (no limit) for the whole machine."""
        if vcpus >= self.cores:
            return -1
        return max(1000, round(CPU_PERIOD_US * vcpus))  # (the kernel's minimum is 1 ms)

    def paths(self) -> list[Path]:
        """Our cgroups, children first: the spawn group, then the parents (one per v1
        controller, or the one v2 folder)."""
        return [*self.spawn, *self.dirs.values(), *([self.root] if self.root else [])]

    def close(self) -> None:
        """Remove our parent cgroups (environments are gone by now)."""
        for path in self.paths():
            _remove_tree(path)


def _remove_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir():
            _remove_tree(child)
    cgroups.remove_dir(str(path), timeout=1.0)


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, opts.split(",")))
    return out


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for v2) -> our path in that hierarchy, from /proc/self/cgroup."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    return own


def _clean_stale(parent: Path) -> None:
    """Remove what a killed warmstart left behind: its parent cgroups and any process in them."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            name = child.name
            if not (child.is_dir() and name.startswith("warmstart-")):
                continue
            try:
                owner = int(name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if not Path(f"/proc/{owner}").exists():
                _remove_tree(child)


def _v1(tag: str) -> Isolation:
    mounts = {o: point for point, fs, opts in _mounts() if fs == "cgroup" for o in opts}
    own = _own_cgroups()
    dirs: dict[str, Path] = {}
    for controller in ("cpu", "memory", "pids"):
        if controller not in mounts:
            raise EngineError(f"no cgroup v1 {controller} controller")
        parent = Path(mounts[controller]) / own.get(controller, "/").lstrip("/")
        _clean_stale(parent)
        path = parent / tag
        try:
            path.mkdir()
        except OSError as e:
            for made in dirs.values():
                _remove_tree(made)
            raise EngineError(f"cannot create {path}: {e.strerror}") from e
        dirs[controller] = path
    spawn = _spawn_group(dirs["cpu"], "cpu.shares", cgroups.INIT_SHARES)
    return Isolation("cgroup-v1", dirs=dirs, spawn=spawn, home=[dirs["cpu"].parent])


def _v2(tag: str, root: str | None) -> Isolation:
    points = [point for point, fs, _ in _mounts() if fs == "cgroup2"]
    if not points:
        raise EngineError("no cgroup v2 hierarchy")
    parent = Path(root or points[0])
    available = (parent / "cgroup.controllers").read_text().split()
    missing = {"cpu", "memory", "pids"} - set(available)
    if missing:
        raise EngineError(f"cgroup v2 controllers not available: {', '.join(sorted(missing))}")
    _clean_stale(parent)
    path = parent / tag
    try:
        path.mkdir()
        (path / "cgroup.subtree_control").write_text("+cpu +memory +pids")
    except OSError as e:
        _remove_tree(path)
        raise EngineError(f"cannot set up {path}: {e.strerror}") from e
    spawn = _spawn_group(path, "cpu.weight", cgroups.INIT_WEIGHT)
    home = Path(points[0]) / _own_cgroups().get("", "/").lstrip("/")
    return Isolation("cgroup-v2", root=path, spawn=spawn, home=[home])


def _spawn_group(parent: Path, weight_file: str, weight: int) -> list[Path]:
    """The zygotes' cgroup under `parent` at the lowest CPU weight ([] if it cannot be made)."""
    path = parent / "spawn"
    try:
        path.mkdir()
        (path / weight_file).write_text(str(weight))
    except OSError:
        _remove_tree(path)
        return []
    return [path]


def detect(mode: str = "auto", v2_root: str | None = None) -> Isolation:
    """Pick the strongest isolation this machine allows (or the one asked for).

    `mode`: auto | cgroup | cgroup-v1 | cgroup-v2 | none. `v2_root`: a delegated cgroup v2
    directory to work under (default: the root of the v2 hierarchy).
    Example: detect().describe() -> "isolation: cgroup v1 (...)".
    """
    if mode not in MODES:
        raise EngineError(f"unknown isolation mode {mode!r}; one of {', '.join(MODES)}")
    if mode == "none":
        return Isolation("none", reason="turned off")
    tag = f"warmstart-{os.getpid()}-{secrets.token_hex(3)}"
    tries = {"cgroup-v1": ["v1"], "cgroup-v2": ["v2"]}.get(mode, ["v1", "v2"])
    problems = []
    for kind in tries:
        try:
            return _v1(tag) if kind == "v1" else _v2(tag, v2_root)
        except (EngineError, OSError) as e:
            problems.append(str(e))
    if mode != "auto":
        raise EngineError(f"isolation {mode} is not available: {'; '.join(problems)}")
    return Isolation("none", reason=problems[-1] if problems else "no cgroups")
