"""The framed protocol between a pool and a Python environment, over two pipes.

Every frame is a little-endian u32 length (of what follows), then a u8 kind, then a fixed
header for that kind, then variable parts whose lengths the header gives. One frame per
message in each direction keeps an invoke to one write and one read on each side.

This module is imported both by warmstart (pool side) and inside environments (stdlib only,
Python 3.9 compatible).
"""

from __future__ import annotations

import os
import select
import struct
import time

# pool -> environment
INVOKE = 1
RESUME = 2  # a restored environment spawned ahead: run the after-restore hooks now (no body)

# environment -> pool
HELLO = 10  # first frame after fork: payload is the pid, in ASCII
INIT_DONE = 11
INIT_ERROR = 12  # payload is the error JSON; the process exits after sending it
RESULT = 13

# Bits of a response's `outcome` byte.
OK = 0
FUNCTION_ERROR = 1
BUSY_WHEN_IDLE = 2  # threads, child processes or a timer could run while idle: freeze it

# Bits of an INVOKE frame's `flags` byte.
POLL_NEXT = 1  # events come back to back and a core is free: poll for the next one, do not sleep

# length, kind, flags, deadline (epoch ms), lengths of request id, ARN, client context, identity,
# trace id
REQUEST = struct.Struct("<IBBQHHIIH")
# length, kind, outcome, duration ms, max RSS KiB, CPU us (user + sys), log length
RESPONSE = struct.Struct("<IBBdIQI")

_LEN = struct.Struct("<I")
RESUME_FRAME = _LEN.pack(1) + bytes([RESUME])


def encode_invoke(
    deadline_ms: int,
    request_id: bytes,
    arn: bytes,
    event: bytes,
    client_context: bytes = b"",
    identity: bytes = b"",
    trace_id: bytes = b"",
    flags: int = 0,
) -> bytes:
    """Encode one INVOKE frame; every argument but flags is already bytes."""
    body_len = (
        REQUEST.size
        - 4
        + len(request_id)
        + len(arn)
        + len(client_context)
        + len(identity)
        + len(trace_id)
        + len(event)
    )
    head = REQUEST.pack(
        body_len,
        INVOKE,
        flags,
        deadline_ms,
        len(request_id),
        len(arn),
        len(client_context),
        len(identity),
        len(trace_id),
    )
    return b"".join((head, request_id, arn, client_context, identity, trace_id, event))


def decode_invoke(frame: bytes) -> tuple[int, int, str, str, bytes, bytes, bytes, bytes]:
    """Split an INVOKE frame (length prefix included) into its parts.

    Returns (flags, deadline_ms, request_id, arn, client_context, identity, trace_id, event).
    """
    _, _, flags, deadline, n_rid, n_arn, n_cc, n_id, n_tr = REQUEST.unpack_from(frame)
    i = REQUEST.size
    rid = frame[i : i + n_rid].decode()
    i += n_rid
    arn = frame[i : i + n_arn].decode()
    i += n_arn
    cc = frame[i : i + n_cc]
    i += n_cc
    ident = frame[i : i + n_id]
    i += n_id
    trace = frame[i : i + n_tr]
    i += n_tr
    return flags, deadline, rid, arn, cc, ident, trace, frame[i:]


def encode_response(
    kind: int,
    outcome: int = OK,
    duration_ms: float = 0.0,
    max_rss_kb: int = 0,
    cpu_us: int = 0,
    log: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    """Encode one frame from the environment to the pool."""
    body_len = RESPONSE.size - 4 + len(log) + len(payload)
    head = RESPONSE.pack(body_len, kind, outcome, duration_ms, max_rss_kb, cpu_us, len(log))
    return b"".join((head, log, payload))


def decode_response(frame: bytes) -> tuple[int, int, float, int, int, bytes, bytes]:
    """A response frame as (kind, outcome, duration_ms, max_rss_kb, cpu_us, log, payload)."""
    _, kind, outcome, duration, rss, cpu, n_log = RESPONSE.unpack_from(frame)
    i = RESPONSE.size
    return kind, outcome, duration, rss, cpu, frame[i : i + n_log], frame[i + n_log :]


def frame_length(buf: bytes | bytearray) -> int:
    """Total length of the frame at the start of buf (prefix included), or -1 if unknown yet."""
    if len(buf) < 4:
        return -1
    return int(_LEN.unpack_from(buf)[0]) + 4


def write_all(fd: int, data: bytes) -> None:
    """Write all of data to a blocking fd."""
    n = os.write(fd, data)  # a pipe takes a small frame whole
    if n < len(data):
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view) :]


def read_frame(
    fd: int, spin_ns: int = 0, poller: select.poll | None = None, chunk: int = 65536
) -> bytes:
    """Read exactly one frame from a non-blocking fd; b'' on end of file.

    Polls for up to spin_ns before sleeping: a reader that sleeps is woken ~50 us later on a
    VM whose idle vCPUs halt, which is most of a round trip. The peer never sends a second
    frame before this one is answered, so one read usually returns the whole frame.
    """
    if poller is None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
    # Wait with poll, not with reads that fail: poll(0) costs a third of a read that fails with
    # EAGAIN, whose exception Python builds with a translated error message.
    poll = poller.poll
    ready = poll(0) if spin_ns else None
    if spin_ns and not ready:
        clock = time.perf_counter_ns
        end = clock() + spin_ns
        while not ready and clock() < end:
            ready = poll(0)
    if not ready:
        poll()
    while True:
        try:
            buf = os.read(fd, chunk)
            break
        except BlockingIOError:
            poll()
    if not buf or frame_length(buf) == len(buf):
        return buf  # end of file, or the whole frame: nearly always
    parts = bytearray(buf)
    need = frame_length(parts)
    while need < 0 or len(parts) < need:
        try:
            buf = os.read(fd, max(chunk, need - len(parts)))
        except BlockingIOError:
            poller.poll()
            continue
        if not buf:
            return b""
        parts += buf
        need = frame_length(parts)
    return bytes(parts)
