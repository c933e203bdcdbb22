"""An execution environment's main program: INIT, then one invocation at a time.

Runs in a process forked from the zygote, with no warmstart code but this package. The order of
INIT follows Lambda: limits first, then the environment, then the handler module's import.
"""

from __future__ import annotations

import decimal
import gc
import importlib
import io
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any, Callable

from . import cgroups, jsonfast, logsetup, protocol, sandbox
from .context import ContextError, LambdaContext

Handler = Callable[[Any, LambdaContext], Any]
MAX_LOG_BYTES = 16 << 20  # what one invocation's output may add to the log; the rest is cut


class Fault(Exception):
    """An error the runtime itself reports (errorType Runtime.*)."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error = make_error(message, error_type, stack_trace or [])

    @classmethod
    def wrap(cls, exc: BaseException, error_type: str = "") -> Fault:
        """The Fault of an exception raised by user code: its type, or `error_type`."""
        fault = cls(error_type, str(exc))
        fault.error = fault_result(exc)
        if error_type:
            fault.error["errorType"] = error_type
        return fault


def make_error(
    message: str, error_type: str, stack_trace: list[str], request_id: str = ""
) -> dict[str, Any]:
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": stack_trace,
    }


def fault_result(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error JSON for an exception raised by user code."""
    frames = list(traceback.extract_tb(exc.__traceback__))
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame.filename:
            frames = frames[i:]
            break
    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id)


def load_handler(handler: str) -> Handler:
    """Import the handler's module and return the function; Fault as the AWS runtime raises it."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {e}") from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}"
        ) from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}", trace
        ) from None
    try:
        return getattr(module, fname)  # type: ignore[no-any-return]
    except AttributeError:
        raise Fault(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def _decimal_default(o: object) -> object:
    if isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class Marshaller:
    def __init__(self, runtime_id: str) -> None:
        # The AWS runtime writes UTF-8 unescaped only from python3.12 on.
        minor = int(runtime_id.rsplit(".", 1)[-1]) if runtime_id.startswith("python3.") else 0
        self.encode = jsonfast.make_dumps(ensure_ascii=minor < 12, default=_decimal_default)

    def marshal(self, result: object) -> bytes:
        if isinstance(result, bytes):
            return result
        try:
            return self.encode(result).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError) as e:
            raise Fault("Runtime.MarshalError", f"Unable to marshal response: {e}") from None


class Output:
    """stdout and stderr of the environment: a memory file the pool also holds, read per invoke."""

    def __init__(self, fd: int) -> None:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if fd > 2:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        raw = io.FileIO(1, "w", closefd=False)
        sys.stdout = io.TextIOWrapper(
            raw, encoding="utf-8", errors="backslashreplace", write_through=True
        )
        sys.stderr = sys.stdout
        sys.__stdout__ = sys.__stderr__ = sys.stdout  # type: ignore[misc]

    @staticmethod
    def take() -> bytes:
        """What was written since the last call; rewinds the file so it does not grow."""
        size = os.lseek(1, 0, os.SEEK_CUR)
        if not size:
            return b""
        data = os.pread(1, min(size, MAX_LOG_BYTES), 0)
        if size > MAX_LOG_BYTES:
            data += b"\n[warmstart: %d bytes of output not kept]\n" % (size - MAX_LOG_BYTES)
        os.ftruncate(1, 0)
        os.lseek(1, 0, os.SEEK_SET)
        return data


_prctl = None


def preload() -> None:
    """Import in the zygote what every environment needs, so each fork has it already."""
    global _prctl
    import ctypes
    import logging  # noqa: F401
    import tempfile  # noqa: F401

    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


class IdleProbe:
    """Whether anything in this environment could run while it waits for its next event.

    With one thread, no child process and no timer, the process can only sit in its read of the
    next request: freezing it changes nothing, and the pool skips the two signals it costs
    (~15-30 us on this kind of machine). Any background thread, child or timer turns freezing on.
    """

    def __init__(self) -> None:
        self.task_fd = self._open("/proc/self/task")
        # Children of the main thread; with one thread, all of them. Cheaper than waitid,
        # which raises on every call when there are none.
        self.children_fd = self._open(f"/proc/self/task/{os.getpid()}/children")

    @staticmethod
    def _open(path: str) -> int:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return -1

    def busy_when_idle(self) -> int:
        if self.task_fd < 0 or os.fstat(self.task_fd).st_nlink > 3:  # threads + 2
            return protocol.BUSY_WHEN_IDLE
        if self.children_fd >= 0:
            if os.pread(self.children_fd, 64, 0):
                return protocol.BUSY_WHEN_IDLE
        else:
            try:
                os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                return protocol.BUSY_WHEN_IDLE
            except ChildProcessError:
                pass
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return protocol.BUSY_WHEN_IDLE
        return 0


def _set_parent_death_signal(parent: int) -> None:
    """Die with the zygote, even when stopped, so no environment outlives warmstart."""
    if _prctl is not None:
        _prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent:
        os._exit(1)


def _set_environment(cfg: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(cfg["env"])
    sys.path[:] = list(cfg["sys_path"]) + [p for p in sys.path if p not in cfg["sys_path"]]
    sys.argv = [os.path.join(os.path.dirname(__file__), "bootstrap.py")]
    import tempfile

    tempfile.tempdir = None  # recomputed from TMPDIR, the environment's own /tmp
    nofile = cfg.get("nofile")
    if nofile:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        except (ValueError, OSError):
            pass


def _log_init_error(error: dict[str, Any]) -> None:
    import logging

    logging.warning(
        "LAMBDA_WARNING: Unhandled exception. "
        "The most likely cause is an issue in the function code.\r"
    )
    logsetup.sink.log_error(logsetup.error_lines(error))


def _report_init_error(resp_fd: int, error: dict[str, Any], started: float) -> None:
    _log_init_error(error)
    protocol.write_all(
        resp_fd,
        protocol.encode_response(
            protocol.INIT_ERROR,
            duration_ms=(time.perf_counter() - started) * 1000,
            max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            log=Output.take(),
            payload=json.dumps(error).encode(),
        ),
    )


def _enter(cfg: dict[str, Any], parent: int) -> None:
    """What every environment does first: its own process group, cgroups, user and /tmp."""
    os.setsid()  # its own process group: frozen, thawed and killed as one
    cgroups.enter(cfg.get("cgroup"))
    if cfg.get("uid") is not None:
        sandbox.drop(cfg["uid"])
    _set_parent_death_signal(parent)  # after the change of user, which clears it
    # Made here rather than by the pool, so that starting many environments at once costs the
    # pool's event loop as little as possible (the zygote removes it when the process ends).
    os.makedirs(cfg["tmp_dir"], 0o700, exist_ok=True)


def _hello(resp_fd: int) -> None:
    protocol.write_all(
        resp_fd, protocol.encode_response(protocol.HELLO, payload=str(os.getpid()).encode())
    )


def _init_handler(cfg: dict[str, Any], log_fd: int) -> Handler:
    """INIT: the environment, logging, the handler's import. Raises Fault with the error JSON."""
    Output(log_fd)
    _set_environment(cfg)
    logsetup.setup(*logsetup.env_log_settings())
    try:
        os.chdir(cfg["task_root"])  # code its user may not enter fails as unreadable code does
        handler = load_handler(cfg["handler"])
    except Fault:
        raise
    except Exception as e:  # PermissionError for code only root may read, as on Lambda
        raise Fault.wrap(e) from None
    LambdaContext.load_settings()
    return handler


def _init_done(resp_fd: int, probe: IdleProbe, started: float) -> None:
    protocol.write_all(
        resp_fd,
        protocol.encode_response(
            protocol.INIT_DONE,
            outcome=probe.busy_when_idle(),
            duration_ms=(time.perf_counter() - started) * 1000,
            max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            log=Output.take(),
        ),
    )


def run(cfg: dict[str, Any], req_fd: int, resp_fd: int, log_fd: int, zygote_pid: int) -> None:
    """INIT and the invoke loop. Never returns: the process ends on EOF or a crash."""
    started = time.perf_counter()
    _enter(cfg, zygote_pid)
    _hello(resp_fd)
    try:
        handler = _init_handler(cfg, log_fd)
    except Fault as f:
        _report_init_error(resp_fd, f.error, started)
        os._exit(1)
    probe = IdleProbe()
    _init_done(resp_fd, probe, started)  # the pool gives it its full CPU weight now
    serve(handler, req_fd, resp_fd, Marshaller(cfg["runtime"]), probe, cfg.get("spin_us", 0) * 1000)


def serve(
    handler: Handler,
    req_fd: int,
    resp_fd: int,
    marshaller: Marshaller,
    probe: IdleProbe,
    spin_ns: int,
) -> None:
    read_frame = protocol.read_frame
    os.set_blocking(req_fd, False)
    poller = select.poll()
    poller.register(req_fd, select.POLLIN)
    decode = protocol.decode_invoke
    encode = protocol.encode_response
    write_all = protocol.write_all
    marshal = marshaller.marshal
    loads = jsonfast.loads
    take = Output.take
    perf = time.perf_counter
    cpu = time.process_time_ns
    getrusage = resource.getrusage
    traced = False
    spin = False
    SELF = resource.RUSAGE_SELF
    RESULT, OK, ERR = protocol.RESULT, protocol.OK, protocol.FUNCTION_ERROR
    POLL_NEXT = protocol.POLL_NEXT
    busy_when_idle = probe.busy_when_idle
    environ = os.environ
    while True:
        # Poll for the next event only when the engine asks (it has a core to spare) and events
        # come back to back (the last one arrived within the budget); otherwise sleep at once.
        waited = perf()
        frame = read_frame(req_fd, spin_ns if spin else 0, poller)
        if not frame:
            os._exit(0)
        flags, deadline, rid, arn, cc, ident, trace, event = decode(frame)
        spin = bool(flags & POLL_NEXT) and (perf() - waited) * 1e9 < spin_ns
        logsetup.request_id = rid
        if trace:
            environ["_X_AMZN_TRACE_ID"] = trace.decode()
            traced = True
        elif traced:
            environ.pop("_X_AMZN_TRACE_ID", None)
            traced = False
        c0 = cpu()
        t0 = perf()
        outcome = OK
        try:
            try:
                context = LambdaContext(rid, deadline, arn, cc, ident)
            except ContextError as e:
                raise Fault("Runtime.LambdaContextUnmarshalError", str(e)) from None
            try:
                payload = loads(event)
            except (ValueError, RecursionError) as e:  # the AWS runtime catches both
                raise Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}") from None
            payload = marshal(handler(payload, context))
        except Fault as f:
            error = f.error
            error["requestId"] = rid
            logsetup.sink.log_error(logsetup.error_lines(error))
            payload = json.dumps(error).encode()
            outcome = ERR
        except Exception as e:
            error = fault_result(e, rid)
            logsetup.sink.log_error(logsetup.error_lines(error))
            payload = json.dumps(error).encode()
            outcome = ERR
        duration = (perf() - t0) * 1000
        usage = getrusage(SELF)
        cpu_us = max(0, int((usage.ru_utime + usage.ru_stime) * 1e6) - c0 // 1000)
        write_all(
            resp_fd,
            encode(
                RESULT,
                outcome | busy_when_idle(),
                duration,
                usage.ru_maxrss,
                cpu_us,
                take(),
                payload,
            ),
        )


# -- SnapStart ---------------------------------------------------------------------------------

BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
# The handler, set in a snapshot process once INIT is done: restored environments inherit it.
_snapshot: tuple[Handler, Marshaller] | None = None


def _hooks(getter: str) -> list[tuple[Callable[..., Any], Any, Any]]:
    """The hooks registered with snapshot_restore_py (the runtime's shim, or the user's copy)."""
    module = sys.modules.get("snapshot_restore_py")  # nothing to run unless the code imported it
    get = getattr(module, getter, None)
    return list(get()) if get is not None else []


def fork_hazards() -> str:
    """Why forking this process now would not give working copies of it ('' if nothing)."""
    import threading

    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads > 1:
        names = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        return f"{threads - 1} thread(s) still running after INIT" + (
            f" ({', '.join(names)})" if names else ""
        )
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            children = f.read().split()
    except OSError:
        children = []
    if children:
        return f"child process(es) still running after INIT (pid {', '.join(children)})"
    return ""


def snapshot(cfg: dict[str, Any], log_fd: int, zygote_pid: int) -> dict[str, Any]:
    """INIT of a SnapStart snapshot: the handler's import, then the before-snapshot hooks.

    Returns the outcome for the pool, {"duration_ms", "max_rss_kb"} and either "error" (the error
    JSON) or "unsafe" (why restores cannot be forked from here, '' if they can). The process
    then forks restored environments (see `restore`).
    """
    global _snapshot
    started = time.perf_counter()
    _enter(cfg, zygote_pid)
    outcome: dict[str, Any] = {}
    try:
        handler = _init_handler(cfg, log_fd)
        try:
            for func, args, kwargs in reversed(_hooks("get_before_snapshot")):
                func(*args, **kwargs)
        except Exception as e:
            raise Fault.wrap(e, BEFORE_SNAPSHOT_ERROR) from None
    except Fault as f:
        _log_init_error(f.error)
        outcome["error"] = f.error
    else:
        _snapshot = (handler, Marshaller(cfg["runtime"]))
        outcome["unsafe"] = fork_hazards()
        # Restored environments' garbage collections then leave INIT's objects alone, and the
        # pages that hold them stay shared with this process.
        gc.freeze()  # (the pool lifts its limits: it only forks restores now, as fast as it can)
    outcome["duration_ms"] = (time.perf_counter() - started) * 1000
    outcome["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return outcome


def _reseed() -> None:
    """Give this restore random generators of its own (state made in INIT stays shared)."""
    import random

    random.seed()  # os.fork reseeds it as well; a restore should not depend on how it is made
    legacy = sys.modules.get("numpy.random")
    if legacy is not None:
        try:
            legacy.seed()
        except Exception:
            pass


def restore(cfg: dict[str, Any], req_fd: int, resp_fd: int, log_fd: int, parent: int) -> None:
    """A restored environment, forked from the snapshot process: after-restore hooks, then serve.

    INIT_DONE carries the hooks' duration (what Lambda bills as Billed Restore Duration).
    """
    assert _snapshot is not None, "restore outside a snapshot process"
    handler, marshaller = _snapshot
    os.setsid()
    _set_parent_death_signal(parent)
    # The platform's part of the restore runs before the function's CPU and memory limits apply
    # (as Lambda's resume of a microVM does); the after-restore hooks run within them: the pool
    # moves the process into its cgroups between HELLO and RESUME (it runs as the snapshot's
    # user, which may not make cgroups).
    snapshot_tmp = cfg["snapshot_tmp_dir"]
    if os.listdir(snapshot_tmp):  # /tmp is part of the snapshot
        import shutil

        shutil.copytree(snapshot_tmp, cfg["tmp_dir"], symlinks=True, dirs_exist_ok=True)
    else:
        os.mkdir(cfg["tmp_dir"])
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    if log_fd > 2:
        os.close(log_fd)
    os.environ.update(cfg["env"])  # its own log stream and /tmp
    import tempfile

    tempfile.tempdir = None
    _reseed()
    LambdaContext.load_settings()
    probe = IdleProbe()  # its own /proc/self, not the snapshot's
    _hello(resp_fd)
    # Spawned ahead of need, as a spare: the restore itself begins when the pool says RESUME.
    frame = protocol.read_frame(req_fd)
    if not frame or frame[4] != protocol.RESUME:
        os._exit(0)
    started = time.perf_counter()
    try:
        for func, args, kwargs in _hooks("get_after_restore"):
            func(*args, **kwargs)
    except Exception as e:
        _report_init_error(resp_fd, Fault.wrap(e, AFTER_RESTORE_ERROR).error, started)
        os._exit(65)
    _init_done(resp_fd, probe, started)
    serve(handler, req_fd, resp_fd, marshaller, probe, cfg.get("spin_us", 0) * 1000)
