"""The Python runtime adapter: how a function version becomes a Python environment.

It owns the zygotes (one per interpreter) and builds what an environment starts with: Lambda's
environment variables, a sys.path of only what Lambda would give the handler (its code, its
layers, boto3/botocore, the standard library), its own /tmp and its cgroup limits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..observe.logs import stream_name
from ..spec import FunctionSpec
from . import interpreters
from .environment import PythonEnvironment
from .forkserver import ForkServer
from .limits import Isolation, vcpus_for
from .snapshot import SnapshotServer, Taken
from .starts import StartSlots

if TYPE_CHECKING:
    from .service import Version

__all__ = ["RUNTIME_PACKAGES", "SNAP_START", "PythonAdapter"]

SNAP_START = "snap-start"  # AWS_LAMBDA_INITIALIZATION_TYPE of a SnapStart version's environments

# What Lambda's Python runtime ships besides the standard library (boto3 and its dependencies).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
SHIM = Path(__file__).parent / "runtime" / "shim" / "snapshot_restore_py.py"
# What passes from the caller's environment to functions' (the rest of it does not): AWS
# credentials, and the SDKs' endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB...),
# so that code pointed at local services by the shell is, as its author expects.
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ENDPOINT_URLS = "AWS_ENDPOINT_URL"
FIRST_UID, UID_SPAN = 1 << 30, 1 << 30  # environments' own user ids, as root (sandbox.py)


def link_runtime_packages(target: Path) -> Path:
    """A folder holding links to boto3 and its dependencies only: the handler's /var/runtime."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            source = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            source = Path(spec.origin)
        else:
            continue
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    # The runtime's SnapStart hooks module, unless the real one is installed next to boto3.
    if importlib.util.find_spec("snapshot_restore_py") is None:
        (target / SHIM.name).symlink_to(SHIM)
    return target


def unreadable(spec: FunctionSpec) -> str:
    """Why environments that run as users of their own cannot read a function's code ('' if
    they can): its folder, its handler's module or a layer closed to other users."""
    module = spec.code_dir / (spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
    for path, needs in (
        (spec.code_dir, 0o005),
        (module, 0o004),
        *((p, 0o005) for p in spec.layers),
    ):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # missing: INIT says so
        if mode & needs != needs:
            return f"{path} (mode {mode & 0o777:o})"
    return ""


class PythonAdapter:
    """Creates Python environments for function versions. Thread-safe."""

    def __init__(self, config: Config, isolation: Isolation, work_dir: Path) -> None:
        self.config = config
        self.isolation = isolation
        self.work_dir = work_dir
        self.runtime_dir = link_runtime_packages(work_dir / "runtime")
        self.tmp_root = work_dir / "tmp"
        self.tmp_root.mkdir(exist_ok=True)
        self._uids: Iterator[int] | None = None
        if isolation.users:
            # Users of their own from a random start in a range no distribution hands out, so
            # that two warmstarts, or this one's past environments, never share one.
            self._uids = itertools.count(FIRST_UID + secrets.randbelow(UID_SPAN - (1 << 24)))
            # Environments pass through to their runtime packages and make their own /tmp in
            # `tmp` (sticky: none can remove another's); neither folder can be listed.
            os.chmod(work_dir, 0o711)
            os.chmod(self.tmp_root, 0o1733)
        self._servers: dict[str, ForkServer] = {}
        self.starts = StartSlots()
        self._interpreters: dict[str, interpreters.Interpreter] = {}
        self._bases: dict[int, dict[str, Any]] = {}
        self._snapshots: list[SnapshotServer] = []
        self._closed = False
        self._lock = threading.Lock()

    def interpreter(self, runtime: str) -> interpreters.Interpreter:
        with self._lock:
            if runtime not in self._interpreters:
                self._interpreters[runtime] = interpreters.resolve(runtime, self.config.python)
            return self._interpreters[runtime]

    def server(self, runtime: str) -> ForkServer:
        exe = self.interpreter(runtime).executable
        with self._lock:
            if exe not in self._servers:
                self._servers[exe] = ForkServer(
                    exe,
                    {
                        "cgroups": [str(p) for p in self.isolation.paths()],
                        "trees": [str(self.work_dir)],
                        "spawn": [str(p) for p in self.isolation.spawn],
                        "home": [str(p) for p in self.isolation.home],
                    },
                    import_time=self.config.import_time,
                    batch=self.config.batch_environments,
                )
            return self._servers[exe]

    def prestart(self, runtimes: set[str]) -> None:
        """Start the zygotes now so the first cold start does not pay for an interpreter."""
        for runtime in runtimes:
            self.server(runtime)._ensure_started()

    def runtime_version(self, runtime: str) -> tuple[str, str]:
        """(`python:3.11.v7`, its runtime version ARN), from the interpreter actually used."""
        interp = self.interpreter(runtime)
        major, minor, micro = interp.version
        digest = hashlib.sha256(f"{interp.executable} {interp.version}".encode()).hexdigest()
        return (
            f"python:{major}.{minor}.v{micro}",
            f"arn:aws:lambda:{self.config.region}::runtime:{digest}",
        )

    def _base(self, version: Version) -> dict[str, Any]:
        """What every environment of a version shares (computed once per version)."""
        key = id(version)
        base = self._bases.get(key)
        if base is not None:
            return base
        spec = version.spec
        interp = self.interpreter(spec.runtime)
        task_root = str(spec.code_dir)
        sys_path = [task_root]
        for layer in spec.layers:
            sys_path += [
                str(layer / "python" / "lib" / f"python{interp.short_version}" / "site-packages"),
                str(layer / "python"),
            ]
        sys_path.append(str(self.runtime_dir))
        cfg = self.config
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_REGION": cfg.region,
            "AWS_DEFAULT_REGION": cfg.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
            "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
            "_AWS_XRAY_DAEMON_PORT": "2000",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": ":".join(
                [
                    os.path.dirname(interp.executable),
                    "/usr/local/bin",
                    "/usr/bin",
                    "/bin",
                    *(str(layer / "bin") for layer in spec.layers),
                ]
            ),
            "LD_LIBRARY_PATH": ":".join(
                [f"{task_root}/lib", *(str(layer / "lib") for layer in spec.layers)]
            ),
            "PYTHONPATH": str(self.runtime_dir),
        }
        for name, value in os.environ.items():
            if name in CREDENTIALS or name.startswith(ENDPOINT_URLS):
                env[name] = value
        if spec.log_format == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level or "INFO"
        env.update(spec.environment)
        base = {
            "handler": spec.handler,
            "runtime": spec.runtime,
            "task_root": task_root,
            "sys_path": sys_path,
            "env": env,
            "nofile": 1024,
        }
        self._bases[key] = base
        return base

    def forget(self, version: Version) -> None:
        self._bases.pop(id(version), None)

    def _own(self, version: Version, init_type: str) -> tuple[str, str, dict[str, Any]]:
        """(id, log stream, config) of a new process: what is its own, not its version's."""
        env_id = secrets.token_hex(16)
        stream = stream_name(version.name, env_id, time.time())
        tmp = self.tmp_root / env_id  # made by the process itself (bootstrap)
        env = {
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
            "TMPDIR": str(tmp),
        }
        config = {
            "env": env,
            "tmp_dir": str(tmp),
            "cgroup": self.isolation.env_spec(env_id, version.spec.memory_size),
        }
        return env_id, stream, config

    def _with_base(self, version: Version, own: dict[str, Any]) -> dict[str, Any]:
        """A process's whole config: its version's, with what is its own on top (a user too,
        as root: restores are the exception, they share their snapshot's)."""
        base = self._base(version)
        uid = next(self._uids) if self._uids is not None else None
        return {**base, **own, "env": {**base["env"], **own["env"]}, "uid": uid}

    def take_snapshot(self, version: Version, timeout_s: float) -> tuple[Taken, str]:
        """Run a SnapStart version's INIT in a new snapshot process: (the snapshot, its stream)."""
        snap_id, stream, own = self._own(version, SNAP_START)
        config = {**self._with_base(version, own), "snapshot": True}
        log_fd = os.memfd_create("warmstart-snapshot-log")
        server = SnapshotServer(self.server(version.spec.runtime), snap_id, config, log_fd)
        try:
            init = server.take(timeout_s)
        finally:
            os.close(log_fd)
        if not init.ok or server.unsafe:
            return Taken(None, init, server.unsafe), stream
        with self._lock:
            closed = self._closed
            if not closed:  # (and forget those that are gone: replaced snapshots)
                self._snapshots = [s for s in self._snapshots if s.alive] + [server]
        if closed:
            server.close()
        return Taken(server, init), stream

    def environment(
        self, version: Version, init_type: str, snapshot: SnapshotServer | None = None
    ) -> PythonEnvironment:
        """A new (not yet started) environment for the version; restored from `snapshot`."""
        env_id, stream, config = self._own(version, init_type)
        if snapshot is not None:
            # The rest is the snapshot's: restores are spawned with only what is their own.
            config["snapshot_tmp_dir"] = snapshot.config["tmp_dir"]
            del config["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"]
        else:
            config = self._with_base(version, config)
        # An environment polls briefly for its next event only where that cannot eat into the
        # CPU share its memory size buys (a whole vCPU or more, or no CPU limit at all).
        throttled = self.isolation.cgroups and vcpus_for(version.spec.memory_size) < 1
        config["spin_us"] = 0 if throttled else self.config.env_spin_us
        return PythonEnvironment(
            snapshot or self.server(version.spec.runtime),
            env_id,
            config,
            version.spec.memory_size,
            init_type,
            stream,
            self.config.spin_us,
            self.starts,
            freeze=self.config.freeze,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            # Snapshot processes first: they clean up after their restores, which would
            # otherwise die with the interpreter's zygote, uncleaned.
            snapshots, self._snapshots = self._snapshots, []
            servers = list(self._servers.values())
        _close_all(snapshots)
        _close_all(servers)


def _close_all(servers: list[Any]) -> None:
    threads = [threading.Thread(target=s.close) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
