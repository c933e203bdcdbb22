"""ForkServer replaces a zygote that died before its reader noticed (a fake zygote)."""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from warmstart.engine.forkserver import LOST, ForkServer


class FakeZygotes(ForkServer):
    """Zygotes that are socket pairs the test holds; their reports are read only when told."""

    def __init__(self) -> None:
        super().__init__("fake-python")
        self.peers: list[socket.socket] = []
        self.read = threading.Event()  # the reader notices nothing until this is set

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.peers.append(theirs)
        self._attach(ours, {"version": [3, 11, 0], "pid": 1000 + len(self.peers)})

    def _read_loop(self, sock: socket.socket, proc: Any) -> None:
        self.read.wait()
        super()._read_loop(sock, proc)


def _spawn_request(peer: socket.socket) -> dict[str, Any]:
    data, fds, _, _ = socket.recv_fds(peer, 65536, 8)
    for fd in fds:
        os.close(fd)
    return dict(json.loads(data))


def test_a_spawn_on_a_dead_zygote_goes_to_a_new_one():
    fs = FakeZygotes()
    try:
        first = fs.spawn("env-1", {}, [os.dup(0)])
        assert _spawn_request(fs.peers[0])["id"] == "env-1"
        fs.peers[0].close()  # the zygote dies; its reader has not seen it yet
        second = fs.spawn("env-2", {}, [os.dup(0)])
        assert len(fs.peers) == 2 and fs.pid == 1002
        assert _spawn_request(fs.peers[1])["id"] == "env-2"
        fs.read.set()  # now the first zygote's reader reports what it took with it
        assert first.result(5) == LOST
        assert not second.done()
        fs.peers[1].send(json.dumps({"op": "exit", "id": "env-2", "code": 0}).encode())
        assert second.result(5).code == 0
    finally:
        fs.read.set()
        fs._closed = True
        for peer in fs.peers:
            peer.close()
