"""Hostile zips sent to `warmstart serve`'s CreateFunction and UpdateFunctionCode.

Each refused archive must get a 400 InvalidParameterValueException and leave nothing behind: not
in the code root (no staging folder, no empty functions/<name>), not in a canary folder outside
it that the archive aims at. The good paths (links Lambda zips carry, a new zip for a function,
published versions keeping theirs) run through real boto3.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import struct
import sys
import time
import warnings
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for
from e2e.serve_helpers import Server

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
ROLE = "arn:aws:iam::123456789012:role/r"
HANDLER = "def handler(event, context):\n    return 'ok'\n"
LINK = stat.S_IFLNK | 0o777


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    umask = os.umask(0o077)  # serve's: unpacked code must still be readable by other users
    try:
        srv = Server(tmp_path_factory.mktemp("serve") / "state").start()
    finally:
        os.umask(umask)
    yield srv
    code, out = srv.stop()
    assert code == 0, out


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    """A folder outside the server's state that the archives aim at."""
    return tmp_path_factory.mktemp("canary")


def build(*entries: tuple[str, bytes, int], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, data, mode) entries, in that order; a mode of LINK makes a link."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def code(*extra: tuple[str, bytes, int]) -> bytes:
    return build(("index.py", HANDLER.encode(), 0o644), *extra)


def snapshot(*folders: Path) -> list[tuple[str, str]]:
    """Every path under the folders, with what a link points at."""
    out = []
    for folder in folders:
        if folder.exists():
            for p in sorted(folder.rglob("*")):
                out.append((str(p), os.readlink(p) if p.is_symlink() else ""))
    return out


def refused(client, server, canary, archive: bytes, message: str = "") -> str:
    """Create a function from archive: a 400 InvalidParameterValueException, nothing written."""
    code_root = server.state_dir / "functions"
    before = snapshot(code_root, canary)
    with pytest.raises(ClientError) as e:
        client.create_function(
            FunctionName="Evil", Runtime=PY, Role=ROLE, Handler="index.handler",
            Code={"ZipFile": archive},
        )  # fmt: skip
    error = e.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidParameterValueException"
    assert message in error["Error"]["Message"]
    assert snapshot(code_root, canary) == before
    assert not (code_root / "Evil").exists()
    assert not list(code_root.glob(".unpacking-*"))
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="Evil")
    return str(error["Error"]["Message"])


def test_a_chain_of_links_cannot_write_outside(client, server, canary):
    """The issue's attack: a deep link resolving to the code root, a link under it that
    climbs out to the canary, a file under that. Each link's text stays inside the archive."""
    k = 64  # more `..` than any real path has folders
    deep = "d/" * k
    escape = "../" * k + str(canary).lstrip("/")
    archive = code(
        (deep + "up", b"../" * k, LINK),
        (deep + "up/esc", escape.encode(), LINK),
        (deep + "up/esc/pwned.txt", b"owned", 0o644),
    )
    refused(client, server, canary, archive, "is not a folder")
    assert not list(server.state_dir.parent.rglob("pwned.txt"))
    assert not (canary / "pwned.txt").exists()


def test_a_later_link_cannot_send_an_earlier_one_outside(client, server, canary):
    """Each link is inside when it is made; the second turns the first into an escape."""
    archive = code(
        ("d1/d2/a", b"b/../../../" + str(canary).lstrip("/").encode(), LINK),
        ("d1/d2/b", b"../..", LINK),
    )
    refused(client, server, canary, archive, "points outside")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("../evil.py", b"x", 0o644)], "Unsafe path"),
        ([("/abs/evil.py", b"x", 0o644)], "Unsafe path"),
        ([("pkg/../../evil.py", b"x", 0o644)], "Unsafe path"),
        ([("pkg\\..\\evil.py", b"x", 0o644)], "Unsafe path"),
        ([("C:/evil.py", b"x", 0o644)], "Unsafe path"),
        ([("a//b.py", b"x", 0o644)], "Unsafe path"),
        ([("lib", b"/etc", LINK)], "points outside"),
        ([("lib", b"../../..", LINK)], "points outside"),
        ([("lib", b"", LINK)], "no usable target"),
        ([("lib", b"real", LINK), ("lib/evil.py", b"x", 0o644)], "is not a folder"),
        ([("pkg", b"x", 0o644), ("pkg/evil.py", b"x", 0o644)], "is not a folder"),
        ([("index.py", b"again", 0o644)], "more than one entry"),
        ([("pkg/", b"", 0o755), ("pkg", b"x", 0o644)], "more than one entry"),
        ([("pipe", b"", stat.S_IFIFO | 0o644)], "special file"),
        ([("dev", b"", stat.S_IFCHR | 0o644)], "special file"),
        ([("sock", b"", stat.S_IFSOCK | 0o644)], "special file"),
    ],
    ids=[
        "dotdot", "absolute", "dotdot-inside", "backslash", "drive", "empty-part",
        "link-absolute", "link-out", "link-empty", "through-link", "through-file",
        "duplicate", "dir-and-file", "fifo", "device", "socket",
    ],
)  # fmt: skip
def test_unsafe_entries_are_refused(client, server, canary, entries, message):
    refused(client, server, canary, code(*entries), message)


def test_a_nul_in_a_name_is_refused(client, server, canary):
    archive = code(("evilXpy", b"x", 0o644)).replace(b"evilXpy", b"evil\x00py")
    refused(client, server, canary, archive, "Unsafe path")


def _patch_central(archive: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Set a field of every central directory header."""
    out = bytearray(archive)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        struct.pack_into(fmt, out, at + offset, value)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def _bomb(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.py", HANDLER)
        with zf.open("zeros.bin", "w", force_zip64=True) as out:
            chunk = b"\0" * (1 << 20)
            for _ in range(size // len(chunk)):
                out.write(chunk)
    return buf.getvalue()


def test_sizes_are_what_is_written_not_what_is_declared(client, server, canary):
    honest = _bomb(300 << 20)  # 300 MB of zeros, under 1 MB zipped
    assert len(honest) < 1 << 20
    refused(client, server, canary, honest, "Unzipped size must be smaller than 262144000 bytes")
    # The same bomb claiming 100 bytes, in its local header and its central directory
    lying = bytearray(honest)
    header = lying.find(b"PK\x03\x04", 1)  # zeros.bin's local header
    struct.pack_into("<L", lying, header + 22, 100)
    extra = header + 30 + struct.unpack_from("<H", lying, header + 26)[0]
    struct.pack_into("<Q", lying, extra + 4, 100)  # its zip64 extra field
    lying = _patch_central(bytes(lying), 24, "<L", 100)
    refused(client, server, canary, lying, "Could not unzip uploaded file")


def test_too_many_entries(client, server, canary):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(100_001):
            zf.writestr(f"{i}", b"")
    refused(client, server, canary, buf.getvalue(), "warmstart unpacks at most 100000")


def test_broken_archives(client, server, canary):
    good = code(("data.txt", b"x" * 10_000, 0o644))
    cases = {
        "truncated": good[: len(good) // 2],
        "not a zip": os.urandom(4096),
        "empty": b"",
        "central directory larger than the file": good[:-22]
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, 0xFFFFFFF, 0, 0),
    }
    stored = build(("index.py", HANDLER.encode(), 0o644), method=zipfile.ZIP_STORED)
    at = stored.index(HANDLER.encode())
    cases["bad CRC"] = stored[:at] + b"X" + stored[at + 1 :]
    cases["encrypted"] = _patch_central(good, 8, "<H", 0x1)
    cases["bzip2"] = build(("index.py", HANDLER.encode(), 0o644), method=zipfile.ZIP_BZIP2)
    cases["unknown method"] = _patch_central(good, 10, "<H", 99)
    for name, archive in cases.items():
        message = refused(client, server, canary, archive, "Could not unzip uploaded file")
        assert message, name


def test_links_lambda_zips_carry_are_kept(client, server):
    handler = (
        "import os\n"
        "def handler(event, context):\n"
        "    return [open(p).read() for p in ('lib/libfoo.so', 'node_modules/.bin/tool')] + [\n"
        "        os.access('bin/run', os.X_OK), os.access('index.py', os.X_OK)]\n"
    )
    archive = build(  # links before what they point at, as zip tools may order them
        ("lib/libfoo.so", b"libfoo.so.1", LINK),
        ("lib/libfoo.so.1", b"libfoo.so.1.2", LINK),
        ("lib/libfoo.so.1.2", b"shared object", 0o644),
        ("node_modules/.bin/tool", b"../pkg/bin/tool", LINK),
        ("node_modules/pkg/bin/tool", b"tool", 0o755),
        ("bin/run", b"#!/bin/sh\n", 0o755),
        ("index.py", handler.encode(), 0o644),
    )
    conf = client.create_function(
        FunctionName="Linked", Runtime=PY, Role=ROLE, Handler="index.handler",
        Code={"ZipFile": archive},
    )  # fmt: skip
    assert conf["CodeSha256"] == base64.b64encode(hashlib.sha256(archive).digest()).decode()
    assert conf["CodeSize"] == len(archive)
    res = client.invoke(FunctionName="Linked")
    assert json.loads(res["Payload"].read()) == ["shared object", "tool", True, False]
    [folder] = (server.state_dir / "functions" / "Linked").iterdir()
    modes = {
        str(p.relative_to(folder)): stat.S_IMODE(p.lstat().st_mode)
        for p in [folder, *folder.rglob("*")]
        if not p.is_symlink()
    }
    assert modes == {
        ".": 0o755, "lib": 0o755, "lib/libfoo.so.1.2": 0o644, "node_modules": 0o755,
        "node_modules/.bin": 0o755, "node_modules/pkg": 0o755, "node_modules/pkg/bin": 0o755,
        "node_modules/pkg/bin/tool": 0o755, "bin": 0o755, "bin/run": 0o755, "index.py": 0o644,
    }  # fmt: skip
    client.delete_function(FunctionName="Linked")
    # Removed once an invocation in flight would have timed out (3 s): nothing runs from it.
    assert wait_for(lambda: not (server.state_dir / "functions" / "Linked").exists(), 10)


def _source(text: str) -> bytes:
    return build(
        ("index.py", f"def handler(event, context):\n    return {text!r}\n".encode(), 0o644)
    )


def test_update_function_code(client, server, canary):
    code_root = server.state_dir / "functions"
    client.create_function(
        FunctionName="Updated", Runtime=PY, Role=ROLE, Handler="index.handler",
        Code={"ZipFile": _source("one")},
    )  # fmt: skip
    first = list((code_root / "Updated").iterdir())
    assert json.loads(client.invoke(FunctionName="Updated")["Payload"].read()) == "one"

    second = _source("two")
    conf = client.update_function_code(FunctionName="Updated", ZipFile=second, Publish=True)
    assert conf["Version"] == "1"
    assert conf["CodeSha256"] == base64.b64encode(hashlib.sha256(second).digest()).decode()
    assert json.loads(client.invoke(FunctionName="Updated")["Payload"].read()) == "two"
    # The old folder stays while an invocation in flight may still read from it (its timeout),
    # then goes.
    assert all(p.exists() for p in first)
    assert wait_for(lambda: not any(p.exists() for p in first), 10)
    assert len(list((code_root / "Updated").iterdir())) == 1

    client.update_function_code(FunctionName="Updated", ZipFile=_source("three"))
    assert json.loads(client.invoke(FunctionName="Updated")["Payload"].read()) == "three"
    res = client.invoke(FunctionName="Updated", Qualifier="1")  # a published version keeps its code
    assert json.loads(res["Payload"].read()) == "two"
    client.update_function_code(FunctionName="Updated", ZipFile=_source("four"))
    time.sleep(2.5)  # the code watch looks every second: it must leave version 1's environment
    res = client.invoke(FunctionName="Updated", Qualifier="1", LogType="Tail")
    assert "Init Duration" not in base64.b64decode(res["LogResult"]).decode()

    before = snapshot(code_root, canary)
    revision = client.get_function(FunctionName="Updated")["Configuration"]["RevisionId"]
    k = 64
    attack = code(
        ("d/" * k + "up", b"../" * k, LINK),
        ("d/" * k + "up/esc/pwned.txt", b"owned", 0o644),
    )
    for archive in (attack, b"not a zip", _bomb(300 << 20)):
        with pytest.raises(client.exceptions.InvalidParameterValueException):
            client.update_function_code(FunctionName="Updated", ZipFile=archive)
        assert snapshot(code_root, canary) == before
    client.update_function_code(FunctionName="Updated", ZipFile=_source("dry"), DryRun=True)
    assert snapshot(code_root, canary) == before
    assert client.get_function(FunctionName="Updated")["Configuration"]["RevisionId"] == revision
    assert json.loads(client.invoke(FunctionName="Updated")["Payload"].read()) == "four"

    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.update_function_code(FunctionName="Updated", ZipFile=_source("x"), RevisionId="no")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_function_code(FunctionName="Nope", ZipFile=_source("x"))

    client.delete_function(FunctionName="Updated")
    assert wait_for(lambda: not (code_root / "Updated").exists(), 10)


def test_files_only_their_owner_may_read_fail_as_on_lambda(tmp_path):
    # Lambda needs every file readable by all; Python's zipfile.writestr makes them 0600.
    server = Server(tmp_path / "state").start()
    try:
        client = server.client()
        client.create_function(
            FunctionName="Closed", Runtime=PY, Role=ROLE, Handler="index.handler",
            Code={"ZipFile": build(("index.py", HANDLER.encode(), 0o600))},
        )  # fmt: skip
        body = json.loads(client.invoke(FunctionName="Closed")["Payload"].read())
    finally:
        _, out = server.stop()
    if os.geteuid() == 0:  # environments run as users of their own
        assert body["errorType"] == "PermissionError", body
        assert "Closed: its code is not readable by other users" in out
    else:
        assert body == "ok"


def test_code_folders_waiting_to_go_are_removed_when_serve_stops(tmp_path):
    server = Server(tmp_path / "state").start()
    folder = server.state_dir / "functions" / "Gone"
    try:
        client = server.client()
        client.create_function(
            FunctionName="Gone", Runtime=PY, Role=ROLE, Handler="index.handler", Timeout=60,
            Code={"ZipFile": code()},
        )  # fmt: skip
        client.delete_function(FunctionName="Gone")
        assert folder.exists()  # an invocation in flight could run 60 s more
    finally:
        code_, out = server.stop()
    assert code_ == 0, out
    assert not folder.exists()
