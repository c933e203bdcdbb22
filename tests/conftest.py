"""Shared fixtures: runtimes over the handler fixtures in tests/apps, checked for leaks."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warmstart import Config, FunctionSpec, Runtime
from warmstart.engine.limits import detect

APPS = Path(__file__).parent / "apps"
BASIC = APPS / "basic"
EVENTS = Path(__file__).parent / "events"
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def spec(name: str, handler: str, code_dir: Path = BASIC, **kw: Any) -> FunctionSpec:
    """A function over the handler fixtures, run by this interpreter."""
    return FunctionSpec(name=name, handler=handler, code_dir=code_dir, runtime=PY, **kw)


def event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def process_gone(pid: int) -> bool:
    """True when pid is not a live process (gone, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or went while we read
        return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def runtime_pids(rt: Runtime) -> set[int]:
    """Every process of a runtime: environments, zygotes, SnapStart snapshots and spares."""
    pids = {e["pid"] for e in rt.environments() if e["pid"]}
    adapter = rt.service.adapter
    for server in [*adapter._servers.values(), *adapter._snapshots]:
        if server.pid:
            pids.add(server.pid)
    for fn in rt.service.functions.values():
        for v in fn.versions.values():
            spare = v.snapshot._spare if v.snapshot is not None else None
            if spare is not None and spare.pid:
                pids.add(spare.pid)
    return pids


def assert_no_leaks(rt: Runtime, pids: set[int]) -> None:
    leaked = [p for p in pids if not wait_for(lambda p=p: process_gone(p), 5)]
    assert not leaked, f"processes left behind: {leaked}"
    iso = rt.service.isolation
    for path in iso.paths():
        assert not path.exists(), f"cgroup left behind: {path}"
    assert not os.path.exists(rt.service.work_dir)


@pytest.fixture(scope="session")
def cgroup_mode() -> str:
    """The isolation this machine gives: cgroup-v1, cgroup-v2 or none."""
    iso = detect("auto")
    iso.close()
    return iso.mode


@pytest.fixture
def needs_cgroups(cgroup_mode: str) -> None:
    if cgroup_mode == "none":
        pytest.skip("needs writable cgroup controllers (cpu, memory, pids); none here")


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's, open to other users: as root, environments run as users of their own and,
    as on Lambda, can only import code that others may read."""
    tmp_path.chmod(0o755)
    return tmp_path


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every environment's user may write, outside pytest's (closed) temporary tree."""
    path = Path(tempfile.mkdtemp(prefix="warmstart-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_runtime(state_dir: Path) -> Iterator[Callable[..., Runtime]]:
    """make_runtime(spec, ..., **settings): a Runtime closed (and leak-checked) after the test."""
    made: list[Runtime] = []

    def make(*specs: FunctionSpec, **settings: Any) -> Runtime:
        settings.setdefault("state_dir", state_dir)
        rt = Runtime(list(specs), Config.resolve(**settings))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        pids = runtime_pids(rt)
        rt.close()
        assert_no_leaks(rt, pids)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A `warmstart serve` of the API template shared by a module's tests; it must stop cleanly.
    (Modules that need other options define their own.)"""
    from e2e.serve_helpers import Server

    srv = Server(tmp_path_factory.mktemp("serve")).start()
    yield srv
    code, out = srv.stop()
    assert code == 0, out
