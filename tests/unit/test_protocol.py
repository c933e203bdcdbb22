"""The framed pipe protocol between pools and Python environments."""

from __future__ import annotations

import os
import threading

from warmstart.engine.runtime import protocol


def test_invoke_frames_round_trip():
    frame = protocol.encode_invoke(
        1234,
        b"req-id",
        b"arn:x",
        b'{"a": 1}',
        b'{"c": 1}',
        b'{"i": 2}',
        b"Root=1",
        protocol.POLL_NEXT,
    )
    assert protocol.frame_length(frame) == len(frame)
    assert protocol.decode_invoke(frame) == (
        protocol.POLL_NEXT,
        1234,
        "req-id",
        "arn:x",
        b'{"c": 1}',
        b'{"i": 2}',
        b"Root=1",
        b'{"a": 1}',
    )


def test_response_frames_round_trip():
    frame = protocol.encode_response(
        protocol.RESULT, protocol.FUNCTION_ERROR, 1.5, 20480, 77, b"log\n", b"payload"
    )
    assert protocol.decode_response(frame) == (
        protocol.RESULT,
        protocol.FUNCTION_ERROR,
        1.5,
        20480,
        77,
        b"log\n",
        b"payload",
    )


def test_frame_length_needs_the_prefix():
    assert protocol.frame_length(b"\x01\x00") == -1


def test_read_frame_reassembles_large_frames():
    r, w = os.pipe()
    os.set_blocking(r, False)
    big = protocol.encode_response(protocol.RESULT, payload=b"x" * (3 << 20))
    writer = threading.Thread(target=protocol.write_all, args=(w, big))
    writer.start()
    assert protocol.read_frame(r, spin_ns=1000) == big
    writer.join()
    os.close(w)
    assert protocol.read_frame(r) == b""  # end of file
    os.close(r)
