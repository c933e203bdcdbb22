"""Environments as users of their own, when warmstart runs as root.

Lambda runs each function as an unprivileged user in a microVM of its own. Here every
environment gets a user id of its own (chosen by the pool): it cannot read another one's /tmp,
memory (/proc/<pid>/mem) or environment, signal it, or move itself into another cgroup, and a
package that only root can read fails as it would on Lambda. What it leaves running is ended
by user id when it ends, wherever it went (a new session, another process group).

Directories only root can enter (a home of mode 0700 holding the interpreter or the code) are
made passable without touching the real filesystem: in the zygote's own mount namespace a
tmpfs covers such a directory and the entries the environments need are bound back into it.
The rest of that directory stays out of their sight.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import Any, Dict, Iterable, List, Set

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
NPROC = 1024  # Lambda: 1,024 processes and threads per environment

_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def load() -> None:
    """Load libc in the zygote, so that forks do not each open it."""
    _c()


def subreaper() -> None:
    """Adopt the orphans of environments (a double fork), so that they end with the zygote."""
    try:
        _c().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def drop(uid: int) -> None:
    """Become the environment's own user: no groups, no capabilities, Lambda's process limit."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # Changing user makes a process undumpable: its /proc files would then belong to root and
    # the environment could not read its own. Other users still cannot read them.
    _c().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))  # counted per user: per env
    except (ValueError, OSError):
        pass


def end_user(uid: int) -> None:
    """Kill every process of an environment's user (the zygote, as root, once it has ended).

    kill(-1) signals every process the caller may signal: with real and effective user id set to
    the environment's, exactly that user's processes. The saved id stays 0 to switch back.
    """
    os.setresuid(uid, uid, 0)
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass  # none left
    finally:
        os.setresuid(0, 0, 0)


def _passable(mode: int) -> bool:
    return bool(mode & 0o001)  # others may search it: an environment's user is always "other"


class Passage:
    """Makes paths reachable by unprivileged users in the zygote's own mount namespace."""

    def __init__(self) -> None:
        self.done: Set[str] = set()
        self.covered: Dict[str, int] = {}  # directory covered by a tmpfs -> fd of the original
        self.exposed: Set[str] = set()  # entries bound back into a covered directory
        self.private = False  # whether the zygote has a mount namespace of its own yet
        self.refused = ""  # why it cannot have one ('' until that was tried)

    def ensure(self, paths: Iterable[str]) -> str:
        """Make every path reachable; '' when it is, else why not (the first problem)."""
        for path in paths:
            if path in self.done and _live(path):
                continue
            try:
                if self._reach(os.path.realpath(path)):
                    self.done.add(path)  # (one missing now is looked at again next time)
            except OSError as e:
                return f"{path}: {e.strerror or e}"
        return ""

    def _reach(self, path: str) -> bool:
        """Whether all of the path exists, made passable. A covered folder shows only what was
        bound back into it: whether the rest exists is asked of the original."""
        current = "/"
        for name in (p for p in path.split("/") if p):
            if current != "/" and not _passable(os.stat(current).st_mode):
                self._cover(current)
            if current in self.covered and not self._expose(current, name):
                return False
            current = os.path.join(current, name)
            if not os.path.lexists(current):
                return False
        return True

    def _namespace(self) -> None:
        if self.private:
            return
        if self.refused:
            raise OSError(1, self.refused)
        try:
            _check(_c().unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            # Nothing mounted here may reach the real system's mount table.
            _check(_c().mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate")
        except OSError as e:
            self.refused = f"no mount namespace can be made here ({e.strerror})"
            raise OSError(e.errno, self.refused) from None
        self.private = True

    def _cover(self, directory: str) -> None:
        self._namespace()
        original = os.open(directory, os.O_PATH | os.O_DIRECTORY)
        try:
            _check(
                _c().mount(
                    b"warmstart",
                    directory.encode(),
                    b"tmpfs",
                    MS_NOSUID | MS_NODEV,
                    b"mode=0711,size=1m",
                ),
                f"mount tmpfs on {directory}",
            )
        except OSError:
            os.close(original)
            raise
        self.covered[directory] = original

    def _expose(self, directory: str, name: str) -> bool:
        """Bind `name` of the covered folder's original back in; False if it has none."""
        key = os.path.join(directory, name)
        source = f"/proc/self/fd/{self.covered[directory]}/{name}"
        if not os.path.exists(source):
            return False
        if key in self.exposed:
            shown = os.fstat(self.covered[key]) if key in self.covered else os.stat(key)
            if _same(shown, os.stat(source)):
                return True
            # Removed and made anew since it was bound (a function deleted and created again):
            # the bind still shows the old one.
            self._forget(key)
        elif os.path.isdir(source):
            os.mkdir(key, 0o711)
        else:
            os.close(os.open(key, os.O_WRONLY | os.O_CREAT, 0o644))
        _check(_c().mount(source.encode(), key.encode(), None, MS_BIND | MS_REC, None), key)
        self.exposed.add(key)
        return True

    def _forget(self, key: str) -> None:
        """Take away what was mounted at `key` (and below it), to bind it anew."""
        if key in self.covered:  # its tmpfs, with everything bound into it, then the bind
            _check(_c().umount2(key.encode(), MNT_DETACH), f"umount {key}")
        _check(_c().umount2(key.encode(), MNT_DETACH), f"umount {key}")
        below = key + "/"
        for k in [k for k in self.covered if k == key or k.startswith(below)]:
            os.close(self.covered.pop(k))
        self.exposed = {k for k in self.exposed if k != key and not k.startswith(below)}
        self.done.clear()  # paths through it are reached anew


def _live(path: str) -> bool:
    """Whether what the path shows still exists (a bind of a folder removed since shows an
    empty folder with no links: the path was removed and, maybe, made anew)."""
    try:
        return os.stat(path).st_nlink > 0
    except OSError:
        return False


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def needed(cfg: Dict[str, Any]) -> List[str]:
    """What an environment must be able to reach: its code, layers and runtime packages (and
    where their links lead), its /tmp's parent, and the interpreter this zygote runs on."""
    import sys

    paths = [cfg["task_root"], os.path.dirname(cfg["tmp_dir"]), *cfg["sys_path"]]
    paths += [sys.base_prefix, sys.prefix, os.path.dirname(os.path.abspath(__file__))]
    runtime_dir = cfg.get("env", {}).get("LAMBDA_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        paths += [os.path.join(runtime_dir, name) for name in os.listdir(runtime_dir)]
    return paths
