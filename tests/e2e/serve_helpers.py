"""Running `warmstart serve` for real, and the clients that talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

APPS = Path(__file__).resolve().parents[1] / "apps"
API_TEMPLATE = APPS / "api" / "template.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every process below pid (children of children included)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for c in map(int, children):
            if c not in found:
                found.add(c)
                frontier.append(c)
    return found


class Server:
    """A `warmstart serve` subprocess on free ports."""

    def __init__(
        self, state_dir: Path, template: Path = API_TEMPLATE, *extra: str, host: str = "127.0.0.1"
    ) -> None:
        self.state_dir = state_dir
        self.template = template
        self.extra = extra
        self.host = host
        self.port = free_port()
        self.api_port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def lambda_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 60) -> Server:
        env = {
            **os.environ,
            "WARMSTART_PYTHON": sys.executable,
            "WARMSTART_ASYNC_DELAY_SCALE": "0.001",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "warmstart.cli",
                "serve",
                str(self.template),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--api-port",
                str(self.api_port),
                "--state-dir",
                str(self.state_dir),
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited: {self.proc.stdout.read() if self.proc.stdout else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve did not start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out or ""

    def client(self, key: str = "test", secret: str = "test"):  # type: ignore[no-untyped-def]
        return boto3.client(
            "lambda",
            endpoint_url=self.lambda_url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 0}, read_timeout=60),
        )
