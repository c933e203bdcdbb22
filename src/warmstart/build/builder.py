"""`warmstart build`: a function's code with its requirements installed, as `sam build` makes it.

For each Python function (and each layer it uses) with a `requirements.txt`, pip installs the
requirements for the Python and the architecture Lambda will run it on: manylinux wheels of the
function's `python3.X` for x86_64 or arm64, never a build from sources unless asked (Lambda does
not run what this machine compiled). The installed packages are kept in a cache keyed on the
requirements, the Python and the platform, so an unchanged requirements.txt costs a copy (hard
links) the second time. The sources are copied over them, and a marker records what the build
was made from, so the engine runs it only while it is fresh (see sam/builds.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..engine.codewatch import SKIP, fingerprint
from ..errors import WarmstartError, one_line
from ..sam import load_template
from ..sam.builds import MARKER
from ..sam.functions import LAYER_TYPES, layer_source
from ..spec import FunctionSpec

__all__ = ["BuildError", "Built", "build", "pip_platforms"]

CACHE = ".cache"  # in the build folder: installed requirements, by key


class BuildError(WarmstartError):
    """A build that could not be made (pip's own words say why)."""


@dataclass(frozen=True)
class Built:
    """One folder `build` made: a function's or a layer's."""

    logical_id: str
    kind: str  # "function" | "layer"
    folder: Path
    requirements: bool  # it had a requirements.txt
    cached: bool  # its requirements came from the cache
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "logical_id": self.logical_id,
            "kind": self.kind,
            "folder": str(self.folder),
            "requirements": self.requirements,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


def pip_platforms(runtime: str, architecture: str) -> list[str]:
    """The wheel platforms Lambda's runtime takes: manylinux2014 (glibc 2.17) everywhere, and
    up to glibc 2.34 on the Amazon Linux 2023 runtimes (python3.12 and later)."""
    arch = "aarch64" if architecture == "arm64" else "x86_64"
    tags = [f"manylinux2014_{arch}", f"manylinux_2_17_{arch}"]
    minor = int(runtime.removeprefix("python3.")) if runtime[8:].isdigit() else 0
    if minor >= 12:
        tags += [f"manylinux_2_{v}_{arch}" for v in (26, 28, 34)]
    return tags


def build(
    template: str | Path,
    functions: Iterable[str] = (),
    state_dir: str | Path = ".warmstart",
    *,
    parameter_overrides: str | dict[str, str] | None = None,
    allow_source: bool = False,
    progress: Callable[[Built], None] | None = None,
) -> list[Built]:
    """Build the template's Python functions (or those named) and their layers into
    <state_dir>/build/<LogicalId>, which `invoke`, `serve` and the tools then run.

    Example: build("template.yaml", ["HelloFunction"])
    """
    loaded = load_template(template, parameter_overrides, use_builds=False)
    out = Path(state_dir).resolve() / "build"
    wanted = list(functions)
    specs = _chosen(loaded.functions, wanted)
    layers = _layers(loaded.path.parent, loaded.resources, specs)
    done: list[Built] = []
    for spec in specs:
        lid = spec.logical_id or spec.name
        done.append(_one(lid, "function", spec.code_dir, out, spec, allow_source, ""))
        if progress is not None:
            progress(done[-1])
    for lid, (folder, spec) in layers.items():
        done.append(_one(lid, "layer", folder, out, spec, allow_source, "python"))
        if progress is not None:
            progress(done[-1])
    return done


def _chosen(all_specs: dict[str, FunctionSpec], wanted: list[str]) -> list[FunctionSpec]:
    by_id = {s.logical_id or s.name: s for s in all_specs.values()}
    for name in wanted:
        if name not in by_id and name not in all_specs:
            raise BuildError(f"no function {name!r} in the template: {', '.join(by_id)}")
    chosen = [s for lid, s in by_id.items() if not wanted or lid in wanted or s.name in wanted]
    python = [s for s in chosen if s.is_python and not s.unsupported]
    if not python:
        raise BuildError("no Python function to build (only Zip functions on python3.X build)")
    return python


def _layers(
    folder: Path, resources: dict[str, object], specs: list[FunctionSpec]
) -> dict[str, tuple[Path, FunctionSpec]]:
    """The local layers the functions use, by logical id, with a function that uses each (its
    Python and architecture are the layer's)."""
    out: dict[str, tuple[Path, FunctionSpec]] = {}
    for lid, res in resources.items():
        if not isinstance(res, dict) or res.get("Type") not in LAYER_TYPES:
            continue
        try:
            source = layer_source(folder, lid, res).resolve()
        except WarmstartError:
            continue
        users = [s for s in specs if source in s.layers]
        if users:
            out[lid] = (source, users[0])
    return out


def _one(
    lid: str,
    kind: str,
    source: Path,
    out: Path,
    spec: FunctionSpec,
    allow_source: bool,
    packages: str,
) -> Built:
    """One build folder: the requirements (cached), then the sources over them, then the
    marker. `packages`: where in the folder they go (a layer's: python/)."""
    started = time.perf_counter()
    requirements = source / "requirements.txt"
    target = out / lid
    partial = Path(tempfile.mkdtemp(prefix=f".{lid}-", dir=_made(out)))
    try:
        cached = False
        has_requirements = requirements.is_file()
        if has_requirements:
            installed, cached = _installed(requirements, out / CACHE, spec, allow_source)
            _link_tree(installed, partial / packages)
        shutil.copytree(source, partial, dirs_exist_ok=True, ignore=_ignored)
        marker = {
            "source": list(fingerprint([source])),
            "runtime": spec.runtime,
            "architecture": spec.architecture,
            "built_at": time.time(),
        }
        (partial / MARKER).write_text(json.dumps(marker))
        _open_to_all(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Built(lid, kind, target, has_requirements, cached, time.perf_counter() - started)


def _installed(
    requirements: Path, cache: Path, spec: FunctionSpec, allow_source: bool
) -> tuple[Path, bool]:
    """The folder the requirements are installed in: from the cache, or by pip now."""
    platforms = [] if allow_source else pip_platforms(spec.runtime, spec.architecture)
    key = hashlib.sha256(
        json.dumps(
            [requirements.read_bytes().decode("utf-8", "replace"), spec.runtime, platforms]
        ).encode()
    ).hexdigest()[:24]
    folder = cache / key
    if folder.is_dir():
        return folder, True
    partial = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=_made(cache)))
    command = [
        sys.executable, "-m", "pip", "install", "--requirement", str(requirements),
        "--target", str(partial), "--no-compile", "--disable-pip-version-check",
        "--no-warn-script-location", "--quiet",
    ]  # fmt: skip
    if platforms:
        version = spec.runtime.removeprefix("python")
        command += ["--implementation", "cp", "--python-version", version, "--only-binary=:all:"]
        for tag in platforms:
            command += ["--platform", tag]
    try:
        p = subprocess.run(
            command, cwd=requirements.parent, capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(f"{requirements}: pip did not run: {e}") from None
    if p.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        said = [line for line in p.stderr.splitlines() if line.strip()][-3:]
        hint = (
            "; a package with no wheel for Lambda's platform can be built from its sources "
            "with --allow-source (then it is this machine's build)"
            if platforms and "matching distribution" in p.stderr
            else ""
        )
        raise BuildError(f"{requirements}: pip failed: {one_line(' | '.join(said))}{hint}")
    partial.rename(folder)
    return folder, False


def _link_tree(source: Path, target: Path) -> None:
    """A copy of a cached tree made of hard links (a copy where they cannot be made)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, dirs_exist_ok=True, symlinks=True)


def _ignored(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP or n == "requirements.txt.lock"}


def _open_to_all(folder: Path) -> None:
    """Readable by every user, as Lambda needs code to be (environments run as users of their
    own as root)."""
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, (mode | 0o444) & 0o7777)


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
