"""What one function can reach of another, and of warmstart.

As root, each environment runs as a user of its own: it cannot read another's /tmp, memory or
environment, signal it or the zygote, or move itself into another cgroup, and what it leaves
running (a double fork into a new session) ends with it. Without root, environments run as
warmstart's user: what escapes ends when warmstart stops. Both are tried for real; the second
in a process that drops to the `nobody` user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BASIC, PY, process_gone, spec, wait_for
from warmstart.engine.runtime import sandbox

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="users of their own need root")
NOBODY = 65534


def _end(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def intruders(make_runtime, **settings):
    rt = make_runtime(spec("A", "intruder.handler"), spec("B", "intruder.handler"), **settings)
    return rt, lambda name, **event: rt.invoke(name, event).payload


@root_only
def test_each_environment_runs_as_a_user_of_its_own(make_runtime):
    rt, call = intruders(make_runtime)
    a, b = call("A", action="whoami"), call("B", action="whoami")
    assert a["uid"] not in (0, b["uid"]) and b["uid"] != 0
    assert a["gid"] == a["uid"] and a["groups"] == []
    assert "each environment runs as a user of its own" in rt.isolation


@root_only
def test_a_function_cannot_read_another_ones_tmp_memory_or_environment(make_runtime):
    rt, call = intruders(make_runtime)
    secret = call("A", action="secret")
    assert call("A", action="read", path=secret) == "s3cret"
    [a] = rt.environments("A")
    for path in (secret, f"/proc/{a['pid']}/environ", f"/proc/{a['pid']}/mem"):
        assert call("B", action="read", path=path) == "PermissionError", path
    assert call("B", action="read", path="/proc/self/environ") != "PermissionError"


@root_only
def test_a_function_cannot_signal_another_or_the_zygote(make_runtime):
    rt, call = intruders(make_runtime)
    call("A", action="whoami")
    [a] = rt.environments("A")
    zygote = rt.service.adapter.server(PY).pid
    assert call("B", action="kill", pid=a["pid"]) == "PermissionError"
    assert call("B", action="kill", pid=zygote) == "PermissionError"
    assert call("A", action="whoami")["uid"] > 0
    assert [e["pid"] for e in rt.environments("A")] == [a["pid"]]


@root_only
def test_a_function_cannot_move_itself_into_another_cgroup(make_runtime, needs_cgroups):
    rt, call = intruders(make_runtime)
    iso = rt.service.isolation
    parents = list(iso.dirs.values()) or [iso.root]
    for parent in parents:
        assert parent is not None
        for target in (parent, parent.parent):  # warmstart's own group, and its parent
            got = call("A", action="join", path=str(target / "cgroup.procs"))
            assert got == "PermissionError", target


@root_only
@pytest.mark.parametrize("isolation", ["auto", "none"])
def test_what_escapes_its_group_ends_with_its_environment(make_runtime, isolation):
    rt, call = intruders(make_runtime, isolation=isolation)
    escaped = call("A", action="escape")
    try:
        assert not process_gone(escaped)
        assert call("A", action="whoami")  # the environment goes on meanwhile
        rt.recycle("A")
        assert wait_for(lambda: process_gone(escaped))
    finally:
        _end(escaped)  # should this fail, not left behind on the machine


@root_only
def test_code_only_root_can_read_fails_as_on_lambda(make_runtime, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (code / "app.py").chmod(0o600)
    rt = make_runtime(spec("Closed", "app.handler", code_dir=code))
    assert any("not readable by other users" in w and "app.py" in w for w in rt.warnings)
    res = rt.invoke("Closed", {})
    # Lambda's runtime reports what the import raised when it is not an ImportError.
    assert res.error_type == "PermissionError"
    assert res.payload["errorMessage"] == f"[Errno 13] Permission denied: '{code / 'app.py'}'"


@root_only
def test_code_behind_a_folder_only_root_may_enter_runs(make_runtime, tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    code = closed / "code"
    code.mkdir(mode=0o755)
    (code / "app.py").write_text("import os\n\ndef handler(event, context):\n    return 1\n")
    rt = make_runtime(spec("Behind", "app.handler", code_dir=code))
    assert not any("Behind" in w for w in rt.warnings)
    res = rt.invoke("Behind", {})
    assert res.payload == 1, res.payload
    # Code that appears there later (UpdateFunctionCode unpacks beside the old) runs too.
    later = closed / "later"
    later.mkdir(mode=0o755)
    (later / "app.py").write_text("def handler(event, context):\n    return 2\n")
    rt.configure("Behind", code_dir=later)
    res = rt.invoke("Behind", {})
    assert res.payload == 2, res.payload
    # And code removed and made anew under the same name (a function deleted, created again).
    shutil.rmtree(later)
    later.mkdir(mode=0o755)
    (later / "app.py").write_text("def handler(event, context):\n    return 3\n")
    rt.recycle("Behind")
    res = rt.invoke("Behind", {})
    assert res.payload == 3, res.payload
    # Made passable in the zygote's own mount namespace only: the machine's is untouched.
    assert str(closed) not in Path("/proc/self/mountinfo").read_text()


PROGRAM = """
import json, os, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import process_gone, spec, wait_for
from warmstart import Config, Runtime

out = {{}}
code = Path({code!r})
rt = Runtime(
    [spec("A", "intruder.handler", code), spec("Killer", "killparent.handler", code)],
    Config.resolve(state_dir=Path({state!r})),
)
out["isolation"] = rt.isolation
out["uid"] = rt.invoke("A", {{"action": "whoami"}}).payload["uid"]
server = rt.service.adapter.server(spec("A", "x").runtime)
zygote = server.pid
out["killer"] = rt.invoke("Killer", {{}}).payload.get("errorType")
wait_for(lambda: process_gone(zygote))
out["after the zygote died"] = rt.invoke("A", {{"action": "whoami"}}).function_error
out["new zygote"] = server.pid != zygote
escaped = rt.invoke("A", {{"action": "escape"}}).payload
rt.recycle("A")
time.sleep(0.5)
out["escaped alive after its environment"] = not process_gone(escaped)
rt.close()
out["escaped gone after close"] = wait_for(lambda: process_gone(escaped))
if not out["escaped gone after close"]:
    os.kill(escaped, 9)  # should the test fail, not left behind on the machine
print(json.dumps(out))
"""


def _as_nobody() -> None:
    """In the child: reach this interpreter and the project through folders only root may
    enter (as warmstart does for environments), then become `nobody`."""
    paths = [sys.base_prefix, sys.prefix, *sys.path, str(BASIC)]
    problem = sandbox.Passage().ensure(p for p in paths if p)
    if problem:
        raise OSError(problem)
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


KILL_PARENT = """\
import os, signal, time

def handler(event, context):
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(2)  # the parent-death signal ends this environment meanwhile
"""


@root_only
def test_without_root_environments_run_as_warmstarts_user(shared_dir):
    code = shared_dir / "code"
    code.mkdir()
    code.chmod(0o755)
    (code / "intruder.py").write_text((BASIC / "intruder.py").read_text())
    (code / "killparent.py").write_text(KILL_PARENT)
    program = PROGRAM.format(
        tests=str(Path(__file__).parents[1]), code=str(code), state=str(shared_dir / "st")
    )
    env = {**os.environ, "WARMSTART_PYTHON": sys.executable, "HOME": str(shared_dir)}
    p = subprocess.run(
        [sys.executable, "-c", program],
        preexec_fn=_as_nobody,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=shared_dir,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["uid"] == NOBODY
    assert "environments run as warmstart's own user" in out["isolation"]
    assert "isolation: none" in out["isolation"]  # nobody may not make cgroups here
    assert out["escaped alive after its environment"]  # what docs/security.md says
    assert out["killer"] == "Runtime.ExitError"  # its own environment died with the zygote
    assert out["after the zygote died"] is None and out["new zygote"]
    assert out["escaped gone after close"]
