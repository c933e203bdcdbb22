"""The zygote: one Python process per interpreter that forks new environments on request.

Starting an interpreter costs ~15-60 ms; forking one that already loaded the runtime costs ~1 ms,
so a cold start costs about what the user's own INIT costs. The zygote never runs user code and
never starts a thread, which keeps fork safe.

Protocol (SOCK_SEQPACKET, one JSON message per packet):
  pool -> zygote: {"op": "spawn", "id", "config"} with fds [request, response, log];
                  with config["snapshot"], fds [control socket, log]: a SnapStart snapshot
                  process that then speaks this same protocol on its control socket;
                  {"op": "shutdown"}; end of file (the pool is gone) means shutdown too.
  zygote -> pool: {"op": "ready", "pid", "version", "executable"} once (a snapshot process
                  sends {"op": "hello", "pid"} first, and INIT's outcome in "init");
                  {"op": "exit", "id", "pid", "code", "oom"} when an environment's process ended
                  (code < 0: killed by that signal);
                  {"op": "warning", "text"} for the user.
Every environment dies with the zygote, and the zygote dies with the pool: nothing is leaked
even if warmstart is killed. What an environment leaves running is ended with it: its process
group, its cgroups, and (as root, see sandbox.py) every process of its user; orphans that left
all three (only possible without root or cgroups) are adopted and end with the zygote.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import socket
import sys
import traceback
from typing import Any, Callable


def _send(sock: socket.socket, msg: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(msg).encode())
    except OSError:
        pass  # the pool is gone; the next poll sees end of file


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _in_child(zygote_sock: socket.socket, fds: list[int], target: Callable[[], None]) -> None:
    """Run `target` in a forked child (without the zygote's own fds) and end the process with
    its exit status."""
    code = 1
    try:
        zygote_sock.close()
        for fd in fds:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        target()
    except SystemExit as e:
        code = _exit_code(e)
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
        except BaseException:
            pass
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


ADOPTED_REAP_MS = 5000  # how often orphans that ended are reaped when nothing else happens


class Zygote:
    """Forks environments that run `entry` (bootstrap.run; bootstrap.restore in a snapshot).

    A snapshot process's zygote neither makes nor removes its restores' cgroups (the pool does:
    it runs as the function's user) nor changes their user (they share the snapshot's).
    """

    def __init__(
        self,
        sock: socket.socket,
        leftovers: dict[str, list[str]],
        bootstrap: Any,
        cgroups: Any,
        entry: Callable[..., None],
        sandbox: Any,
        snapshot: bool = False,
    ) -> None:
        self.sock = sock
        self.leftovers = leftovers
        self.bootstrap = bootstrap
        self.cgroups = cgroups
        self.entry = entry
        self.sandbox = sandbox
        self.in_snapshot = snapshot
        self.root = os.geteuid() == 0 and not snapshot
        self.passage = sandbox.Passage() if self.root else None
        self.warned: set[str] = set()
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        self.children: dict[int, tuple[str, int, dict[str, Any]]] = {}  # by pidfd
        self.pid = os.getpid()

    def announce(self, **extra: Any) -> None:
        version = list(sys.version_info[:3])
        ready = {"op": "ready", "pid": self.pid, "version": version, "executable": sys.executable}
        _send(self.sock, {**ready, **extra})

    def serve(self, **extra: Any) -> None:
        self.announce(**extra)
        ctrl = self.sock.fileno()
        while True:
            events = self.poller.poll(ADOPTED_REAP_MS)
            for fd, _ in events:
                if fd == ctrl:
                    self.handle_message()
                else:
                    self.reap(fd)
            # Orphans appear when an environment's process ends (or now and then): not on the
            # way of a spawn request.
            if not events or any(fd != ctrl for fd, _ in events):
                self.reap_adopted()

    def handle_message(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 8)
        except OSError:
            data, fds = b"", []
        if not data:
            self.shutdown(pool_gone=True)
        msg = json.loads(data)
        if msg["op"] == "spawn":
            self.spawn(msg, fds)
        elif msg["op"] == "shutdown":
            self.shutdown()

    def warn(self, text: str) -> None:
        if text not in self.warned:
            self.warned.add(text)
            _send(self.sock, {"op": "warning", "text": text})

    def spawn(self, msg: dict[str, Any], fds: list[int]) -> None:
        cfg = msg["config"]
        if cfg.get("uid") is not None and self.passage is not None:
            problem = self.passage.ensure(self.sandbox.needed(cfg))
            if problem:
                cfg["uid"] = None
                self.warn(
                    f"environments of {cfg['env'].get('AWS_LAMBDA_FUNCTION_NAME', '?')} run as "
                    f"root, not as users of their own: {problem}"
                )
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            _send(
                self.sock,
                {
                    "op": "exit",
                    "id": msg["id"],
                    "pid": 0,
                    "code": 1,
                    "oom": False,
                    "error": f"fork failed: {e}",
                },
            )
            return
        if pid == 0:
            if cfg.get("snapshot"):
                target = functools.partial(self.snapshot, cfg, fds)
            else:
                target = functools.partial(self.entry, cfg, fds[0], fds[1], fds[2], self.pid)
            inherited = [*self.children, *(self.passage.covered.values() if self.passage else ())]
            _in_child(self.sock, inherited, target)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.poller.register(pidfd, select.POLLIN)
        self.children[pidfd] = (msg["id"], pid, cfg)

    def snapshot(self, cfg: dict[str, Any], fds: list[int]) -> None:
        """In a child: INIT of a SnapStart snapshot, then the zygote of the environments
        restored from it. fds: its control socket, its log. It says `hello` with its pid at once
        (so that a hanging INIT can be killed), then `ready` with INIT's outcome."""
        ctrl = socket.socket(fileno=fds[0])
        _send(ctrl, {"op": "hello", "pid": os.getpid()})
        outcome = self.bootstrap.snapshot(cfg, fds[1], self.pid)
        restores = Zygote(
            ctrl, {}, self.bootstrap, self.cgroups, self.bootstrap.restore, self.sandbox, True
        )
        if "error" in outcome or outcome["unsafe"]:
            restores.announce(init=outcome)
            sys.exit(1 if "error" in outcome else 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        restores.serve(init=outcome)

    def reap(self, pidfd: int) -> None:
        env_id, pid, cfg = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        oom = self.cleanup(pid, cfg)
        _send(self.sock, {"op": "exit", "id": env_id, "pid": pid, "code": code, "oom": oom})

    def cleanup(self, pid: int, cfg: dict[str, Any]) -> bool:
        try:
            os.killpg(pid, signal.SIGKILL)  # whatever the handler started in its group
        except OSError:
            pass
        if self.in_snapshot:  # the pool removes a restore's cgroups
            oom = bool(cfg.get("cgroup") and self.cgroups.oom_killed(cfg["cgroup"]))
        else:
            oom = bool(self.cgroups.remove(cfg.get("cgroup")))
        if cfg.get("uid") is not None and self.root:
            self.sandbox.end_user(cfg["uid"])  # what left its group (setsid) and cgroups
        shutil.rmtree(cfg["tmp_dir"], ignore_errors=True)
        return oom

    def adopted(self) -> list[int]:
        """Children that are not environments: orphans of theirs, adopted (see subreaper)."""
        try:
            with open(f"/proc/self/task/{self.pid}/children") as f:
                pids = {int(p) for p in f.read().split()}
        except OSError:
            return []
        return sorted(pids - {pid for _, pid, _ in self.children.values()})

    def reap_adopted(self) -> None:
        for pid in self.adopted():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def shutdown(self, pool_gone: bool = False) -> None:
        """Kill every environment, clean up after them (and after the pool if it is gone), and
        exit."""
        for _, pid, _ in self.children.values():
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for pidfd, (_, pid, cfg) in list(self.children.items()):
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
            self.cleanup(pid, cfg)
            os.close(pidfd)
        self.children.clear()
        for pid in self.adopted():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        if pool_gone:  # killed: nobody else removes what it made (the spawn group, once left)
            self.cgroups.join(self.leftovers.get("home", []))
            for path in self.leftovers.get("cgroups", []):
                if self.pid not in self.cgroups.procs(path):  # could not leave: not ours to kill
                    self.cgroups.remove_dir(path, timeout=1.0)
            for path in self.leftovers.get("trees", []):
                shutil.rmtree(path, ignore_errors=True)
        os._exit(0)


def main(ctrl_fd: int, leftovers: dict[str, list[str]], batch: bool = False) -> None:
    from _warmstart_runtime import bootstrap, cgroups, sandbox  # type: ignore[import-not-found]

    bootstrap.preload()
    sandbox.load()
    sandbox.subreaper()
    if batch:
        with contextlib.suppress(OSError, AttributeError):
            # Environments (forks of this process) wake without preempting what runs on the
            # core they land on: under `warmstart serve`, most often the server passing events
            # and answering clients, which every environment waits for. Their CPU share is
            # unchanged. Measured with 16 clients on 2 cores: 3-12% more invocations a second.
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    # Ctrl-C goes to the pool, which shuts the zygote down; the zygote must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cgroups.join(leftovers.get("spawn", []))  # see Isolation.spawn in engine/limits.py
    sock = socket.socket(fileno=ctrl_fd)
    Zygote(sock, leftovers, bootstrap, cgroups, bootstrap.run, sandbox).serve()


def _load_package() -> None:
    """Load this directory as the private package _warmstart_runtime, without touching sys.path."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "_warmstart_runtime", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_warmstart_runtime"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    _load_package()
    main(
        int(sys.argv[1]),
        json.loads(sys.argv[2]) if len(sys.argv) > 2 else {},
        sys.argv[3:4] == ["batch"],
    )
