"""Which code runs: a function's sources, or a build of them (`sam build`, `warmstart build`).

A build is used as `sam local` users expect: `--build-dir` when given, as it is; otherwise the
build `sam build` left in `.aws-sam/build/<LogicalId>`, or the one `warmstart build` made in the
state folder, when it is newer than the sources (a line says which runs). A build older than its
sources is not used, and a warning says to build again. Sources with a `requirements.txt` and no
build get a hint the engine gives if an import then fails.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.codewatch import fingerprint
from ..spec import normalized

__all__ = ["MARKER", "Builds", "read_marker", "requirement_names"]

MARKER = ".warmstart-build.json"  # in each folder `warmstart build` makes: what it was made from
SAM_BUILD = Path(".aws-sam") / "build"


@dataclass
class Builds:
    """Where built code may be, for one template, in the order it is looked for."""

    template_folder: Path
    explicit: Path | None = None  # --build-dir: used as it is
    state_dir: Path | None = None  # `warmstart build` writes to <state dir>/build
    use: bool = True  # False: the sources, always (what `warmstart build` builds from)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pick(self, logical_id: str, source: Path) -> Path | None:
        """The build folder to run for `source` (a function's or a layer's), or None."""
        if not self.use:
            return None
        if self.explicit is not None:
            built = self.explicit / logical_id
            return built.resolve() if built.is_dir() else None
        candidates = [(self.template_folder / SAM_BUILD, "sam build")]
        if self.state_dir is not None:
            candidates.append((self.state_dir / "build", "warmstart build"))
        for root, tool in candidates:
            built = root / logical_id
            if not built.is_dir():
                continue
            if _fresh(built, source):
                self.notes.append(f"{logical_id}: running the {tool} in {_shown(built)}")
                return built.resolve()
            self.warnings.append(
                f"{logical_id}: {_shown(built)} is older than its sources ({_shown(source)}): "
                f"running the sources; `{tool}` again to run a build"
            )
        return None


def read_marker(built: Path) -> dict[str, object] | None:
    """What `warmstart build` recorded of a build, or None (not one of its builds)."""
    try:
        doc = json.loads((built / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _fresh(built: Path, source: Path) -> bool:
    marker = read_marker(built)
    if marker is not None:  # ours: made from exactly these sources?
        return marker.get("source") == list(fingerprint([source]))
    try:  # sam's: built after the sources' last change? (it copies them with their times)
        built_at = built.stat().st_mtime_ns
    except OSError:
        return False
    return fingerprint([source])[1] <= built_at


def requirement_names(source: Path) -> set[str]:
    """The distributions a folder's requirements.txt names (normalized), or an empty set."""
    try:
        lines = (source / "requirements.txt").read_text(errors="replace").splitlines()
    except OSError:
        return set()
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if m and not line.startswith("-"):
            names.add(normalized(m.group(1)))
        elif line.endswith(".whl"):  # a wheel file: its name starts the file name
            names.add(normalized(os.path.basename(line).split("-", 1)[0]))
    return names


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
