"""Which Python runs a function: its runtime's python3.X when on PATH, else the current one."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Interpreter", "resolve"]

_PROBE = "import sys; print(*sys.version_info[:3], sys.executable)"


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
        out = subprocess.run(
            [command, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split(maxsplit=3)
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 4:
        return None
    return Interpreter(out[3].strip(), (int(out[0]), int(out[1]), int(out[2])))


def current() -> Interpreter:
    v = sys.version_info
    return Interpreter(sys.executable, (v[0], v[1], v[2]))


def resolve(runtime: str, override: str | None = None) -> Interpreter:
    """The interpreter for a `python3.X` runtime.

    Example: resolve("python3.12") -> Interpreter("/usr/bin/python3.12", (3, 12, 1)).
    """
    want = runtime.removeprefix("python")
    if override:
        found = _probe(override)
        if found is None:
            raise FileNotFoundError(f"cannot run the Python interpreter {override!r}")
        return found
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
