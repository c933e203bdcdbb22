"""Lambda's platform log lines (text and JSON formats) and the log stream files.

Streams are laid out like CloudWatch's: one file per environment, named after its log stream,
under `<state dir>/logs/<function>/YYYY/MM/DD/[version]<id>.log`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import record as r
from .report import Report

__all__ = [
    "LogStream",
    "init_report",
    "init_start",
    "iso_ms",
    "platform_event",
    "render_log",
    "restore_report",
    "restore_start",
    "stream_name",
    "stream_path",
    "streams",
]


def iso_ms(epoch: float) -> str:
    """UTC time with milliseconds, as Lambda writes it: 2024-02-09T08:42:44.078Z."""
    ms = int(epoch * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def platform_event(kind: str, record: dict[str, Any], epoch: float) -> str:
    """One JSON-format platform record, newline included."""
    return json.dumps({"time": iso_ms(epoch), "type": kind, "record": record}) + "\n"


def _instance(
    runtime_version: str, runtime_arn: str, function: str, version: str, stream: str, memory: int
) -> dict[str, Any]:
    """What platform.initStart and platform.restoreStart say of the environment."""
    return {
        "runtimeVersion": runtime_version,
        "runtimeVersionArn": runtime_arn,
        "functionName": function,
        "functionVersion": version,
        "instanceId": stream,
        "instanceMaxMemory": memory << 20,
    }


def init_start(
    json_format: bool,
    runtime_version: str,
    runtime_arn: str,
    init_type: str,
    function: str,
    version: str,
    stream: str,
    memory_mb: int,
    epoch: float,
) -> str:
    if json_format:
        instance = _instance(runtime_version, runtime_arn, function, version, stream, memory_mb)
        record = {"initializationType": init_type, "phase": "init", **instance}
        return platform_event("platform.initStart", record, epoch)
    return f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_arn}\n"


def init_report(
    json_format: bool,
    duration_ms: float,
    status: str,
    error_type: str | None,
    init_type: str,
    epoch: float,
    phase: str = "init",
) -> str:
    if json_format:
        record: dict[str, Any] = {"initializationType": init_type, "phase": phase, "status": status}
        if error_type:
            record["errorType"] = error_type
        record["metrics"] = {"durationMs": round(duration_ms, 3)}
        return platform_event("platform.initReport", record, epoch)
    line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase}\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line + "\n"


def restore_start(
    json_format: bool,
    runtime_version: str,
    runtime_arn: str,
    function: str,
    version: str,
    stream: str,
    memory_mb: int,
    epoch: float,
) -> str:
    """RESTORE_START: an environment resumes from a SnapStart snapshot."""
    if json_format:
        instance = _instance(runtime_version, runtime_arn, function, version, stream, memory_mb)
        return platform_event("platform.restoreStart", instance, epoch)
    return f"RESTORE_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_arn}\n"


def restore_report(
    json_format: bool, duration_ms: float, status: str, error_type: str | None, epoch: float
) -> str:
    """RESTORE_REPORT: how the restore went (Restore Duration; the error, when it failed)."""
    if json_format:
        record: dict[str, Any] = {"status": status}
        if error_type:
            record["errorType"] = error_type
        record["metrics"] = {"durationMs": round(duration_ms, 3)}
        return platform_event("platform.restoreReport", record, epoch)
    line = f"RESTORE_REPORT Restore Duration: {duration_ms:.2f} ms"
    if status != "success":
        line += f"\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line + "\n"


def stream_name(version: str, env_id: str, epoch: float) -> str:
    """CloudWatch's stream name for an environment: 2024/01/31/[$LATEST]<32 hex>."""
    return time.strftime("%Y/%m/%d", time.gmtime(epoch)) + f"/[{version}]{env_id}"


def stream_path(state_dir: Path, function: str, stream: str) -> Path:
    return state_dir / "logs" / function / f"{stream}.log"


@dataclass(frozen=True)
class LogStream:
    function: str
    name: str
    path: Path

    @property
    def modified(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0


def streams(
    state_dir: Path, function: str | None = None, since: float | None = None
) -> list[LogStream]:
    """Log streams, oldest change first; of one function or all of them.

    Example: [s.name for s in streams(Path(".warmstart"), "Hello")]
    """
    root = state_dir / "logs"
    names = (
        [function] if function else sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    )
    out = []
    for fn in names:
        base = root / fn
        if not base.is_dir():
            continue
        for path in base.glob("*/*/*/*.log"):
            name = str(path.relative_to(base))[:-4]
            out.append(LogStream(fn, name, path))
    out.sort(key=lambda s: s.modified)
    if since is not None:
        out = [s for s in out if s.modified >= since]
    return out


def functions_with_logs(state_dir: Path) -> list[str]:
    root = state_dir / "logs"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def follow(
    paths: Iterator[list[LogStream]], interval: float = 0.25
) -> Iterator[tuple[LogStream, str]]:
    """Yield (stream, new text) as streams grow; `paths` yields the current list on each round."""
    offsets: dict[Path, int] = {}
    for current in paths:
        for stream in current:
            try:
                size = stream.path.stat().st_size
            except OSError:
                continue
            start = offsets.get(stream.path, 0)
            if size > start:
                with stream.path.open("rb") as f:
                    f.seek(start)
                    data = f.read(size - start)
                offsets[stream.path] = size
                yield stream, data.decode("utf-8", "replace")
        time.sleep(interval)


def render_log(rec: tuple[Any, ...]) -> str:
    """The log text of an invocation record, in the function's log format."""
    rid, version, started = rec[r.REQUEST_ID], rec[r.VERSION], rec[r.STARTED_AT]
    report = Report(rid, *rec[r.REPORT])
    out: str = rec[r.OUTPUT].decode("utf-8", "replace")
    if out and not out.endswith("\n"):
        out += "\n"
    init_text: str = rec[r.INIT_TEXT]
    if rec[r.JSON_LOGS]:
        start = {"requestId": rid, "functionArn": rec[r.ARN], "version": version}
        end = started + rec[r.LATENCY_MS] / 1000
        return (
            init_text
            + platform_event("platform.start", start, started)
            + out
            + platform_event("platform.report", report.record(), end)
        )
    return (
        f"{init_text}START RequestId: {rid} Version: {version}\n"
        f"{out}{rec[r.PLATFORM_TEXT]}END RequestId: {rid}\n{report.line()}\n"
    )
