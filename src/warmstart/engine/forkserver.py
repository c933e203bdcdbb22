"""The pool's side of a zygote (engine/runtime/zygote.py): start it, ask for forks, learn exits."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import EngineError
from .runtime import cgroups

__all__ = ["LOST", "ExitStatus", "ForkServer", "pidfd_open", "receive"]

log = logging.getLogger("warmstart")

ZYGOTE = Path(__file__).parent / "runtime" / "zygote.py"
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ExitStatus:
    """How an environment's process ended: code >= 0 exit status, < 0 killed by signal -code."""

    code: int
    oom: bool = False


LOST = ExitStatus(-9)  # what an environment's end looks like when its zygote is gone


def _ready(sock: socket.socket, event: int, timeout: float | None = None) -> bool:
    """Wait until the socket is readable or writable (or broken: the next call says how)."""
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


def _send_when_ready(
    sock: socket.socket, send: Callable[[], object], timeout: float | None = None
) -> bool:
    """Send on the non-blocking control socket, waiting until it takes it; False on failure."""
    while True:
        try:
            if not _ready(sock, select.POLLOUT, timeout):
                return False
            send()
            return True
        except BlockingIOError:
            continue
        except (OSError, ValueError):  # the zygote is gone, or the socket closed
            return False


def receive(sock: socket.socket, timeout: float) -> dict[str, Any]:
    """The next message on a blocking control socket; {} on timeout, end of file or garbage."""
    if timeout <= 0:
        return {}
    sock.settimeout(timeout)
    try:
        return dict(json.loads(sock.recv(65536) or b"{}"))
    except (OSError, ValueError):
        return {}


def pidfd_open(pid: int) -> int:
    """A pidfd of the process (readable once it has exited), or -1 where there is none."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or Linux < 5.3
        return -1


def _clean_up_after(config: dict[str, Any]) -> None:
    """Remove an environment's cgroups (killing what is left in them) and its /tmp."""
    cgroups.remove(config.get("cgroup"))
    tmp = config.get("tmp_dir")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class ForkServer:
    """One zygote process for one interpreter; thread-safe. A zygote that died (killed, or by a
    handler that killed its parent) is replaced by a new one at the next spawn; the environments
    it took with it are reported LOST and cleaned up here.

    Example:
        fs = ForkServer("/usr/bin/python3.12"); fut = fs.spawn("env-1", config, fds); fs.close()
    """

    def __init__(
        self,
        executable: str,
        leftovers: dict[str, list[str]] | None = None,
        import_time: bool = False,
        batch: bool = False,
    ) -> None:
        self.executable = executable
        self.batch = batch  # its forks run SCHED_BATCH (Config.batch_environments)
        self.name = f"the runtime process of {executable}"  # in messages
        # -X importtime: environments' imports are timed into their logs; the zygote's own
        # start-up imports would go to our stderr, so its stderr is dropped then.
        self.import_time = import_time
        # Paths the zygote removes when it shuts down, should the pool be gone by then.
        self.leftovers = leftovers or {}
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        # Spawn requests not yet sent: the id, the message, the fds.
        self._backlog: deque[tuple[str, bytes, list[int]]] = deque()
        self._sender: threading.Thread | None = None
        # Environments not yet ended: the zygote that forked them, their end, their config.
        self._exits: dict[str, tuple[socket.socket, Future[ExitStatus], dict[str, Any]]] = {}
        self._sock: socket.socket | None = None  # the live zygote's control socket
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.version: tuple[int, int, int] = (0, 0, 0)
        self.pid = 0
        # The zygote's pidfd: its environments die with it (parent-death signal), so an idle one
        # whose zygote is gone is doomed even before its own end shows. Earlier zygotes' stay
        # open (their environments may still ask) until close().
        self.pidfd = -1
        self._pidfds: list[int] = []
        self._closed = False

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [
                    self.executable,
                    "-I",
                    "-S",
                    "-B",
                    *(["-X", "importtime"] if self.import_time else []),
                    str(ZYGOTE),
                    str(theirs.fileno()),
                    json.dumps(self.leftovers),
                    *(["batch"] if self.batch else []),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL if self.import_time else None,
                start_new_session=True,  # Ctrl-C reaches warmstart, which then closes it
            )
        except OSError as e:
            ours.close()
            raise EngineError(f"cannot start {self.executable}: {e}") from e
        finally:
            theirs.close()
        ready = receive(ours, READY_TIMEOUT_S)
        if ready.get("op") != "ready":
            ours.close()
            proc.kill()
            proc.wait()
            raise EngineError(f"the runtime process of {self.executable} did not start")
        self._proc = proc
        self._attach(ours, ready, proc)

    def _attach(
        self,
        sock: socket.socket,
        ready: dict[str, Any],
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """Take the zygote's control socket once it said `ready`; start reading its reports."""
        # Non-blocking: a spawn request must never wait for a zygote that is behind (MSG_DONTWAIT
        # is not honoured by every kernel on a connected SEQPACKET pair; O_NONBLOCK is).
        sock.setblocking(False)
        major, minor, micro = ready["version"]
        self.version = (int(major), int(minor), int(micro))
        self.pid = int(ready["pid"])
        self.pidfd = pidfd_open(self.pid)
        if self.pidfd >= 0:
            self._pidfds.append(self.pidfd)
        self._sock = sock
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock, proc), name="warmstart-zygote", daemon=True
        )
        self._reader.start()

    def _ensure_started(self) -> socket.socket:
        with self._lock:
            if self._closed:
                raise EngineError("the runtime is closed")
            if self._sock is None:
                self.start()
            assert self._sock is not None
            return self._sock

    def _forget(self, sock: socket.socket) -> None:
        """The zygote behind `sock` is gone (a send failed): the next spawn starts a new one,
        and its reader ends, reporting its environments lost. The lock is held."""
        if self._sock is sock:
            self._sock = None
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def spawn(self, env_id: str, config: dict[str, Any], fds: list[int]) -> Future[ExitStatus]:
        """Fork a new environment, handing it `fds` (which are closed here once sent).

        The future resolves when its process has ended. Never blocks: when the zygote is behind
        with its forks, the request waits in a queue that a thread sends from, so that a burst
        of cold starts cannot stall the event loop that is serving warm environments. A zygote
        found dead is replaced once.
        """
        done: Future[ExitStatus] = Future()
        msg = json.dumps({"op": "spawn", "id": env_id, "config": config}).encode()
        for _ in range(2):
            try:
                sock = self._ensure_started()
            except BaseException:
                _close_all(fds)
                raise
            with self._lock:
                if sock is not self._sock:
                    continue  # it died meanwhile
                self._exits[env_id] = (sock, done, config)
                if not self._backlog:
                    try:
                        socket.send_fds(sock, [msg], fds)
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._exits.pop(env_id, None)
                        self._forget(sock)
                        continue
                    else:
                        _close_all(fds)
                        return done
                self._backlog.append((env_id, msg, fds))
                if self._sender is None:
                    self._sender = threading.Thread(
                        target=self._send_loop, name="warmstart-spawn", daemon=True
                    )
                    self._sender.start()
                self._queued.notify()
            return done
        _close_all(fds)
        raise EngineError(f"cannot start an environment: {self.name} keeps exiting")

    def _send_loop(self) -> None:
        """Send queued spawn requests as the zygote takes them."""
        while True:
            with self._lock:
                while not self._backlog and not self._closed:
                    self._queued.wait()
                if not self._backlog:
                    return
                env_id, msg, fds = self._backlog[0]
            sent = False
            for _ in range(2):  # a zygote found dead is replaced once
                try:
                    sock = self._ensure_started()
                except EngineError:
                    break
                sent = _send_when_ready(sock, partial(socket.send_fds, sock, [msg], fds))
                with self._lock:
                    entry = self._exits.get(env_id)
                    if sent:
                        if entry is not None:
                            self._exits[env_id] = (sock, entry[1], entry[2])
                        break
                    self._forget(sock)
            _close_all(fds)
            with self._lock:
                self._backlog.popleft()
                entry = None if sent else self._exits.pop(env_id, None)
            if entry is not None:  # no zygote took it; the environment never was
                entry[1].set_result(LOST)

    def _read_loop(self, sock: socket.socket, proc: subprocess.Popen[bytes] | None) -> None:
        while True:
            try:
                _ready(sock, select.POLLIN)
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                break
            msg = json.loads(data)
            if msg.get("op") == "exit":
                with self._lock:
                    entry = self._exits.pop(msg["id"], None)
                if entry is not None:
                    self._ended(entry[2])
                    entry[1].set_result(ExitStatus(int(msg["code"]), bool(msg.get("oom"))))
            elif msg.get("op") == "warning":
                log.warning("%s", msg.get("text"))
        # The zygote is gone: its environments died with it (parent-death signal).
        with self._lock:
            lost = [(k, v) for k, v in self._exits.items() if v[0] is sock]
            for k, _ in lost:
                del self._exits[k]
            if self._sock is sock:
                self._sock = None
            closed = self._closed
        if not closed:
            log.warning(
                "%s exited; %d environment(s) ended with it; a new one starts with the next "
                "cold start",
                self.name,
                len(lost),
            )
            if proc is not None:  # not ours to wait for once close() is
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
        for _, (_, fut, _) in lost:
            fut.set_result(LOST)
        for _, (_, _, config) in lost:
            _clean_up_after(config)  # what the zygote would have done when it reaped them
        sock.close()

    def _ended(self, config: dict[str, Any]) -> None:
        """An environment's process ended and the zygote cleaned up after it."""

    def close(self, timeout: float = 5.0) -> None:
        """Kill every environment of this zygote and the zygote itself; waits for them."""
        with self._lock:
            self._closed = True
            self._queued.notify()
            sock, reader = self._sock, self._reader
        if sock is not None:
            _send_when_ready(sock, partial(sock.send, b'{"op": "shutdown"}'), timeout)
        self._wait_gone(timeout)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
        with self._lock:
            pidfds, self._pidfds = self._pidfds, []
        _close_all(pidfds)

    def _wait_gone(self, timeout: float) -> None:
        """Wait for the zygote's process to end after shutdown; kill it if it does not."""
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
