"""Which Python runs a function: its runtime's python3.X when on PATH, else the current one."""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from ..errors import WarmstartError

__all__ = ["OLDEST", "Interpreter", "InterpreterError", "check", "resolve"]

_PROBE = "import sys; print('warmstart-probe', *sys.version_info[:3], sys.executable)"
OLDEST = (3, 9)  # the code that runs inside environments (engine/runtime) needs this much


class InterpreterError(WarmstartError):
    """The interpreter asked for (--python, WARMSTART_PYTHON) cannot run functions."""


@dataclass(frozen=True)
class Interpreter:
    executable: str
    version: tuple[int, int, int]
    warning: str | None = None  # set when the runtime's own version was not found

    @property
    def short_version(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@functools.cache
def _probe(command: str) -> Interpreter | None:
    """Run the command once and ask it what it is (PATH entries may be shims that fail)."""
    try:
        return _ask(command, command)
    except InterpreterError:
        return None


def _ask(command: str, shown: str) -> Interpreter:
    """What Python the command is; InterpreterError saying why when it is none."""
    try:
        p = subprocess.run(
            [command, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        raise InterpreterError(
            f"--python {shown}: did not answer within 20 s; is it a Python interpreter?"
        ) from None
    except OSError as e:
        raise InterpreterError(f"--python {shown}: cannot be run: {e.strerror}") from None
    out = p.stdout.split(maxsplit=4)
    if p.returncode != 0 or len(out) != 5 or out[0] != "warmstart-probe":
        said = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or [""])[-1]
        raise InterpreterError(
            f"--python {shown}: is not a Python interpreter (asked for its version, it "
            f"{'said: ' + said[:100] if said else f'exited with status {p.returncode}'})"
        )
    try:
        version = (int(out[1]), int(out[2]), int(out[3]))
    except ValueError:
        raise InterpreterError(f"--python {shown}: is not a Python interpreter") from None
    return Interpreter(out[4].strip(), version)


@functools.cache
def check(command: str) -> Interpreter:
    """The interpreter a user named (a path, or a command on PATH), checked to be a Python that
    can run functions. Example: check("/usr/bin/python3.12").short_version -> "3.12"
    """
    if not isinstance(command, str) or not command.strip() or "\x00" in command:
        raise InterpreterError(f"--python {command!r:.60}: not a path or command")
    path = command if os.sep in command else shutil.which(command)
    if path is None:
        raise InterpreterError(f"--python {command}: no such command on PATH")
    try:
        info = os.stat(path)
    except OSError as e:
        raise InterpreterError(f"--python {command}: {e.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InterpreterError(f"--python {command}: is a folder, not a Python interpreter")
    if not os.access(path, os.X_OK):
        raise InterpreterError(f"--python {command}: is not executable")
    found = _ask(path, command)
    if found.version[:2] < OLDEST:
        raise InterpreterError(
            f"--python {command}: Python {found.short_version} is older than the oldest "
            f"warmstart runs functions with ({OLDEST[0]}.{OLDEST[1]})"
        )
    return found


def current() -> Interpreter:
    v = sys.version_info
    return Interpreter(sys.executable, (v[0], v[1], v[2]))


def resolve(runtime: str, override: str | None = None) -> Interpreter:
    """The interpreter for a `python3.X` runtime.

    Example: resolve("python3.12") -> Interpreter("/usr/bin/python3.12", (3, 12, 1)).
    """
    want = runtime.removeprefix("python")
    if override:
        given = check(override)
        if given.short_version != want:
            return Interpreter(
                given.executable,
                given.version,
                warning=f"{runtime} runs with Python {given.short_version} ({override}, given "
                "with --python)",
            )
        return given
    cur = current()
    if cur.short_version == want:
        return cur
    path = shutil.which(f"python{want}")
    found = _probe(path) if path else None
    if found is not None and found.short_version == want:
        return found
    return Interpreter(
        cur.executable,
        cur.version,
        warning=f"{runtime} not found on PATH: running with Python {cur.short_version} "
        f"({cur.executable}) instead",
    )
