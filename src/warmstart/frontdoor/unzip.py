"""A function's zip (CreateFunction, UpdateFunctionCode), unpacked without trusting it.

Safe by construction rather than by checking names: every entry is written through directory
file descriptors opened with O_NOFOLLOW, files are created with O_EXCL|O_NOFOLLOW and links with
`symlinkat`, so a path that passes through a link (or lands on one) the archive made is refused,
never followed. Links themselves are kept, as Lambda keeps them (versioned .so files,
node_modules/.bin), when the whole unpacked tree resolves them inside the folder. Bytes are
counted as they are written, so an archive that lies about its sizes still stops at Lambda's
250 MB. Everything goes into a private temporary folder first, renamed into place only when the
whole archive is in: a refused archive leaves nothing behind.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import IO, NamedTuple

from ..errors import InvalidParameterValueError

__all__ = ["MAX_ENTRIES", "UNZIPPED_LIMIT", "Unpacked", "copy", "unpack"]

UNZIPPED_LIMIT = 262_144_000  # Lambda's deployment package limit, unzipped
MAX_ENTRIES = 100_000  # warmstart's bound: a central directory is parsed into memory
CHUNK = 1 << 20
BAD_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
TOO_BIG = f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DRIVE = re.compile(r"^[A-Za-z]:")
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64_SIZE = 20


class Unpacked(NamedTuple):
    """Where an archive went, and its size and base64 SHA-256 (Lambda's CodeSize, CodeSha256)."""

    folder: Path
    size: int
    sha256: str


def unpack(archive: bytes, root: Path, name: str, limit: int = UNZIPPED_LIMIT) -> Unpacked:
    """Unpack a function's zip into a new folder root/name/<id>; InvalidParameterValueError
    (with Lambda's message where it has one) if it is not a zip Lambda would run.

    Example: unpack(Path("fn.zip").read_bytes(), state / "functions", "Hello").folder
    """
    digest = hashlib.sha256(archive).digest()
    zf = _open(archive)
    entries = _entries(zf, limit)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
    target = root / name
    try:
        _extract(zf, entries, staging, limit)
        _check_links(staging, [n for n, info in entries if _kind(info) == stat.S_IFLNK])
        os.chmod(staging, 0o755)
        target.mkdir(exist_ok=True)
        folder = target / f"{digest.hex()[:12]}-{staging.name.rsplit('-', 1)[-1]}"
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            target.rmdir()  # only if this left it empty
        raise
    return Unpacked(folder, len(archive), base64.b64encode(digest).decode())


def _refuse(problem: str) -> InvalidParameterValueError:
    return InvalidParameterValueError(f"{BAD_ZIP} ({problem})")


def _open(archive: bytes) -> zipfile.ZipFile:
    count = _central_directory_count(archive)
    if count > MAX_ENTRIES:
        raise InvalidParameterValueError(
            f"The zip file has {count} entries; warmstart unpacks at most {MAX_ENTRIES}"
        )
    try:
        zf = zipfile.ZipFile(BytesIO(archive))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
        raise _refuse(str(e)) from None
    if len(zf.infolist()) > MAX_ENTRIES:  # the count above missed some: an odd zip64 layout
        raise _refuse("more entries than its central directory holds")
    return zf


def _central_directory_count(archive: bytes) -> int:
    """How many entries the central directory holds, at most, before zipfile parses it.

    Counted as header signatures in the directory's bytes, not taken from the end record (which
    may lie): zipfile reads the directory by its size, making one object per header.
    """
    at = archive.rfind(b"PK\x05\x06", max(0, len(archive) - _EOCD.size - 0xFFFF))
    if at < 0 or len(archive) - at < _EOCD.size:
        raise _refuse("no end of central directory")
    size = _EOCD.unpack_from(archive, at)[5]
    end = at
    locator = at - _LOCATOR64_SIZE
    if locator >= 0 and archive.startswith(b"PK\x06\x07", locator):  # zip64, where zipfile
        record = locator - _EOCD64.size  # looks for it: just before the locator
        if record < 0 or not archive.startswith(b"PK\x06\x06", record):
            raise _refuse("bad zip64 end of central directory")
        size = _EOCD64.unpack_from(archive, record)[8]
        end = record
    if size > end:
        raise _refuse("the central directory is larger than the file")
    return archive.count(b"PK\x01\x02", end - size, end)


def _kind(info: zipfile.ZipInfo) -> int:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    if info.is_dir():
        return stat.S_IFDIR
    return stat.S_IFMT(mode) or stat.S_IFREG


def _entries(zf: zipfile.ZipFile, limit: int) -> list[tuple[str, zipfile.ZipInfo]]:
    """Each entry with its normalised name; refuses what cannot be unpacked safely."""
    seen: set[str] = set()
    out = []
    declared = 0
    for info in zf.infolist():
        raw = info.orig_filename
        name = raw[:-1] if raw.endswith("/") else raw
        parts = name.split("/")
        if (
            not name
            or "\x00" in raw
            or "\\" in raw
            or name.startswith("/")
            or _DRIVE.match(name)
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise InvalidParameterValueError(f"Unsafe path in the zip file: {raw!r}")
        if name in seen:
            raise InvalidParameterValueError(f"The zip file has more than one entry at {name!r}")
        seen.add(name)
        kind = _kind(info)
        if kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
            raise InvalidParameterValueError(
                f"{name!r} in the zip file is a special file (mode {kind:o}): only files, "
                "folders and links can be unpacked"
            )
        if info.flag_bits & 0x1:
            raise _refuse(f"{name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refuse(f"{name!r} uses compression method {info.compress_type}")
        declared += info.file_size
        out.append((name, info))
    if declared > limit:
        raise InvalidParameterValueError(TOO_BIG)
    return out


def _extract(
    zf: zipfile.ZipFile, entries: list[tuple[str, zipfile.ZipInfo]], staging: Path, limit: int
) -> None:
    root = os.open(staging, _DIR_FLAGS)
    budget = [limit]
    try:
        for name, info in entries:
            *parents, leaf = name.split("/")
            kind = _kind(info)
            try:
                parent = _open_dirs(root, parents, name)
                try:
                    if kind == stat.S_IFDIR:
                        os.close(_open_dirs(parent, [leaf], name))
                    elif kind == stat.S_IFLNK:
                        os.symlink(_link_target(zf, info, name), leaf, dir_fd=parent)
                    else:
                        _write_file(zf, info, parent, leaf, name, budget)
                finally:
                    if parent != root:
                        os.close(parent)
            except FileExistsError:
                raise InvalidParameterValueError(
                    f"The zip file has more than one entry at {name!r}"
                ) from None
            except OSError as e:
                if e.errno not in (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL):
                    raise  # the machine's problem (a full disk...), not the archive's
                raise InvalidParameterValueError(f"Cannot unpack {name!r}: {e.strerror}") from None
    finally:
        os.close(root)


def _open_dirs(fd: int, parts: list[str], name: str) -> int:
    """The directory parts below fd (made if missing), never through a link; a new fd, or fd
    itself when parts is empty."""
    current = fd
    for part in parts:
        try:
            os.mkdir(part, dir_fd=current)
            made = True
        except FileExistsError:
            made = False
        try:
            following = os.open(part, _DIR_FLAGS, dir_fd=current)
        except OSError:  # ELOOP (a link), ENOTDIR (a file)
            raise InvalidParameterValueError(
                f"Unsafe path in the zip file: {name!r} goes through {part!r}, "
                "which is not a folder"
            ) from None
        finally:
            if current != fd:
                os.close(current)
        if made:  # whatever the umask: environments may run as users of their own
            os.fchmod(following, 0o755)
        current = following
    return current


def _link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> str:
    with _member(zf, info, name) as src:
        raw = _read_checked(src, 4097, name)
    try:
        target = raw.decode()
    except UnicodeDecodeError:
        raise InvalidParameterValueError(f"Link {name!r} in the zip file is not UTF-8") from None
    if not target or "\x00" in target or len(raw) > 4096:
        raise InvalidParameterValueError(f"Link {name!r} in the zip file has no usable target")
    if target.startswith("/"):
        raise InvalidParameterValueError(
            f"Link in the zip file points outside it: {name!r} -> {target!r}"
        )
    return target


@contextmanager
def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Iterator[IO[bytes]]:
    try:
        src = zf.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError) as e:
        raise _refuse(f"{name!r}: {e}") from None
    with src:
        yield src


def _read_checked(src: IO[bytes], size: int, name: str) -> bytes:
    try:
        return src.read(size)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise _refuse(f"{name!r}: {e}") from None


def _write_file(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    parent: int,
    leaf: str,
    name: str,
    budget: list[int],
) -> None:
    fd = os.open(leaf, _FILE_FLAGS, 0o600, dir_fd=parent)
    with os.fdopen(fd, "wb") as out, _member(zf, info, name) as src:
        copy(src, out, budget, name)
        mode = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
        os.fchmod(out.fileno(), mode or 0o644)


def copy(src: IO[bytes], out: IO[bytes], budget: list[int], name: str) -> None:
    """Copy src to out, counting what is written against budget[0] (the bytes left).

    Example: copy(member, file, [UNZIPPED_LIMIT], "index.py") raises InvalidParameterValueError
    once more than the limit has been written, whatever the archive said the size was.
    """
    while True:
        chunk = _read_checked(src, CHUNK, name)
        if not chunk:
            return
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise InvalidParameterValueError(TOO_BIG)
        out.write(chunk)


def _check_links(staging: Path, links: list[str]) -> None:
    """Every link, resolved through the whole unpacked tree, stays inside it.

    Checked once everything is in place: a later entry can change where an earlier link leads.
    """
    top = os.path.realpath(staging)
    for name in links:
        resolved = os.path.realpath(os.path.join(top, name))
        if resolved != top and not resolved.startswith(top + os.sep):
            target = os.readlink(os.path.join(top, name))
            raise InvalidParameterValueError(
                f"Link in the zip file points outside it: {name!r} -> {target!r}"
            )
