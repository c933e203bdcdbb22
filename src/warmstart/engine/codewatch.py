"""Noticing that a function's code changed, so its environments can be replaced."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["fingerprint"]

SKIP = frozenset({"__pycache__", ".git", ".aws-sam", ".warmstart", "node_modules"})


def fingerprint(folders: Iterable[Path]) -> tuple[int, int, int]:
    """(files, newest modification time in ns, total bytes) of the folders' files.

    Cheap enough to run every second on a function's code and layers: one stat per file.
    Example: fingerprint([Path("src")]) != before  # something was edited, added or removed
    """
    files = newest = size = 0
    stack = [str(f) for f in folders]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP:
                            stack.append(entry.path)
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                files += 1
                size += st.st_size
                newest = max(newest, st.st_mtime_ns)
    return files, newest, size
