"""CPU share per memory size, and the cgroup file writes (v2 against a fake tree)."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmstart.engine.limits import Isolation, detect, vcpus_for
from warmstart.engine.runtime import cgroups
from warmstart.errors import EngineError


def test_vcpus():
    assert vcpus_for(1769, cores=64) == 1.0
    assert vcpus_for(10240, cores=64) == pytest.approx(5.79, abs=0.01)  # Lambda: "up to 6"
    assert vcpus_for(3538, cores=64) == 2.0
    assert vcpus_for(128, cores=64) == pytest.approx(0.0724, abs=1e-4)
    assert vcpus_for(10240, cores=2) == 2.0


def test_env_spec_quotas():
    iso = Isolation("cgroup-v2", root=Path("/fake/warmstart-1"), cores=2)
    spec = iso.env_spec("e1", 128)
    assert spec == {
        "version": 2,
        "dir": "/fake/warmstart-1/e1",
        "cpu_quota_us": 1447,
        "init_cpu_quota_us": -1,  # INIT: about two vCPUs, this whole machine
        "cpu_period_us": 20_000,
        "memory_bytes": 128 << 20,
        "pids_max": 1024,
    }
    assert iso.env_spec("e2", 3538)["cpu_quota_us"] == -1  # a whole machine: not throttled
    four = Isolation("cgroup-v2", root=Path("/fake/warmstart-1"), cores=4)
    assert four.env_spec("e3", 128)["init_cpu_quota_us"] == 40_000  # two of four cores
    assert four.env_spec("e4", 5307)["init_cpu_quota_us"] == 60_000  # its share, above two
    assert iso.cpu_throttled(1024) and not iso.cpu_throttled(4096)
    none = Isolation("none", reason="turned off")
    assert none.env_spec("e", 128) is None and not none.cpu_throttled(128)
    assert "not throttled" in none.describe()


def fake_cgroup(path: Path, *files: str) -> None:
    """A folder with the control files the kernel would show in a new cgroup."""
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("")


def test_cgroup_v2_writes(tmp_path):
    # A fake cgroup v2 folder: the writes land in plain files we can read back.
    spec = Isolation("cgroup-v2", root=tmp_path, cores=2).env_spec("env", 256)
    d = tmp_path / "env"
    fake_cgroup(
        d, "cpu.max", "cpu.weight", "memory.max", "memory.swap.max", "pids.max", "cgroup.procs"
    )
    cgroups.create(spec)
    assert (d / "cpu.weight").read_text() == "1"  # INIT runs at the lowest weight ...
    cgroups.init_done(spec)
    assert (d / "cpu.weight").read_text() == "100"  # ... and then at the default
    assert (d / "cpu.max").read_text() == "2894 20000"
    assert (d / "memory.max").read_text() == str(256 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "1024"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroups.oom_killed(spec)


def test_cgroup_v1_writes(tmp_path):
    dirs = {c: tmp_path / c / "warmstart-1" for c in ("cpu", "memory", "pids")}
    spec = Isolation("cgroup-v1", dirs=dirs, cores=2).env_spec("env", 1024)
    fake_cgroup(dirs["cpu"] / "env", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us")
    fake_cgroup(dirs["memory"] / "env", "memory.limit_in_bytes", "memory.oom_control")
    fake_cgroup(dirs["pids"] / "env", "pids.max")
    cgroups.create(spec)
    assert (dirs["cpu"] / "env" / "cpu.shares").read_text() == "2"
    cgroups.init_done(spec)
    assert (dirs["cpu"] / "env" / "cpu.shares").read_text() == "1024"
    assert (dirs["cpu"] / "env" / "cpu.cfs_quota_us").read_text() == "11577"
    assert (dirs["memory"] / "env" / "memory.limit_in_bytes").read_text() == str(1024 << 20)
    assert (dirs["pids"] / "env" / "pids.max").read_text() == "1024"
    assert not cgroups.oom_killed(spec)


def test_detect_modes():
    iso = detect("none")
    assert iso.mode == "none" and not iso.cgroups
    with pytest.raises(EngineError, match="unknown isolation mode"):
        detect("docker")
    with pytest.raises(EngineError, match="not available"):
        detect("cgroup-v2", v2_root="/nonexistent/cgroup")


def test_detect_falls_back_when_cgroups_are_unavailable(monkeypatch):
    from warmstart.engine import limits

    def no_cgroups(*a, **k):
        raise EngineError("permission denied")

    monkeypatch.setattr(limits, "_v1", no_cgroups)
    monkeypatch.setattr(limits, "_v2", no_cgroups)
    iso = detect("auto")
    assert iso.mode == "none" and "permission denied" in iso.describe()
