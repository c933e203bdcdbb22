"""Invocation records under faults: a full disk, an unusable database, a writer that dies.

The full disk is real: a small tmpfs mounted as the state folder and filled up.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from conftest import APPS, spec, wait_for
from e2e.serve_helpers import Server, descendants
from warmstart import Config, Runtime
from warmstart.engine.events import list_events
from warmstart.errors import StateDatabaseError
from warmstart.observe.metrics import Metrics
from warmstart.observe.records import DB_NAME, RecordStore, connect, query
from warmstart.stats import stats

WARMSTART = [sys.executable, "-m", "warmstart.cli"]
ENV = {**os.environ, "WARMSTART_PYTHON": sys.executable}  # the template says python3.11
T = TypeVar("T")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, to be filled for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; returns the file to delete to give them back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert shutil.disk_usage(disk).free == 0
    return filler


def request_ids(state: Path) -> list[str]:
    return [r[0] for r in query(state, "SELECT request_id FROM invocations")]


def log_text(state: Path) -> str:
    return "".join(p.read_text() for p in sorted((state / "logs").rglob("*.log")))


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def invoke_in_thread(call: Callable[[], T], n: int) -> list[T]:
    """n calls, which must all be answered within a minute."""
    results: list[T] = []
    t = threading.Thread(target=lambda: results.extend(call() for _ in range(n)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "invocations waited for the full disk"
    assert len(results) == n
    return results


def test_records_wait_for_a_full_disk_then_each_is_written_once(make_runtime, small_disk, caplog):
    caplog.set_level(logging.INFO, "warmstart")
    state = small_disk / "state"
    rt = make_runtime(spec("Printer", "printer.handler"), state_dir=state)
    writer = rt.service.writer
    ids = [rt.invoke("Printer", {}).request_id for _ in range(5)]
    rt.flush()
    filler = fill(small_disk)
    # Past MAX_BACKLOG a submitter ships a batch itself and waits for the writer: not now.
    writer.MAX_BACKLOG = 20
    results = invoke_in_thread(lambda: rt.invoke("Printer", {}), 300)
    assert all(r.status == "success" for r in results)
    ids += [r.request_id for r in results]
    rt.flush()  # returns: the records cannot be written now
    assert writer.waiting == "disk full"
    assert writer.pending() > 0
    assert len(request_ids(state)) < len(ids)
    os.unlink(filler)
    assert wait_for(lambda: writer.pending() == 0, 30), "records not written once there was room"
    rt.flush()
    assert sorted(request_ids(state)) == sorted(ids)  # each one, once
    text = log_text(state)
    assert all(text.count(f"START RequestId: {i} ") == 1 for i in ids)
    assert all(text.count(f"REPORT RequestId: {i}\t") == 1 for i in ids)
    assert text.count("to stdout\n") == len(ids)
    assert writer.dropped == 0
    # One line when they start to wait and one when they are written again, not one per batch.
    [waits] = messages(caplog, "cannot be written now")
    assert "no space left" in waits.lower() and str(state) in waits
    assert len(messages(caplog, "written again")) == 1


def test_past_the_bound_records_are_dropped_counted_and_reported(make_runtime, small_disk, caplog):
    state = small_disk / "state"
    rt = make_runtime(spec("Printer", "printer.handler"), state_dir=state)
    writer = rt.service.writer
    writer.MAX_WAITING_BYTES = 50_000  # ~100 records
    ids = [rt.invoke("Printer", {}).request_id for _ in range(5)]
    rt.flush()
    filler = fill(small_disk)
    for _ in range(10):
        ids += [r.request_id for r in invoke_in_thread(lambda: rt.invoke("Printer", {}), 50)]
        rt.flush()
    dropped = writer.dropped
    assert 0 < dropped < len(ids)
    metrics = Metrics(rt.service).render()[0].decode()
    assert f"warmstart_records_dropped_total {dropped:.1f}" in metrics
    pending = int(float(re.findall(r"^warmstart_records_pending (\S+)$", metrics, re.M)[0]))
    assert pending == writer.pending() > 0
    os.unlink(filler)
    assert wait_for(lambda: writer.pending() == 0, 30)
    assert wait_for(lambda: stats(state)["unwritten"], 10), "the dropped count never reached the db"
    written = request_ids(state)
    assert len(set(written)) == len(written) == len(ids) - dropped
    assert set(written) <= set(ids)
    [note] = stats(state)["unwritten"]
    assert note["function"] == "Printer" and note["records"] == dropped
    assert note["reason"] == "disk full" and note["first"] <= note["last"]
    assert stats(state)["functions"]["Printer"]["invocations"] == len(ids) - dropped
    assert len(messages(caplog, "are dropped (and counted)")) == 1
    [lost] = messages(caplog, "are lost")
    assert lost.startswith(f"{dropped} invocation record(s)") and "disk full" in lost
    p = subprocess.run(
        [*WARMSTART, "stats", "--state-dir", str(state)], capture_output=True, text=True, env=ENV
    )
    assert p.returncode == 0, p.stderr
    assert f"{dropped:,} records of Printer started between" in p.stdout
    assert "could not be written (disk full)" in p.stdout


def test_serve_answers_with_a_full_disk_and_metrics_show_what_waits(small_disk):
    state = small_disk / "state"
    server = Server(state, APPS / "template.yaml").start()
    try:
        client = server.client()

        def invoke() -> int:
            return int(client.invoke(FunctionName="Echo", Payload=b"{}")["StatusCode"])

        def gauge() -> float:
            text = urllib.request.urlopen(server.lambda_url + "/metrics").read().decode()
            return float(re.findall(r"^warmstart_records_pending (\S+)$", text, re.M)[0])

        assert [invoke() for _ in range(3)] == [200] * 3
        assert wait_for(lambda: gauge() == 0, 10)
        filler = fill(small_disk)
        assert invoke_in_thread(invoke, 100) == [200] * 100
        assert wait_for(lambda: gauge() > 0, 10)
        time.sleep(0.5)  # a few of the writer's attempts
        assert gauge() > 0
        os.unlink(filler)
        assert wait_for(lambda: gauge() == 0, 30)
    finally:
        code, out = server.stop()
    assert code == 0, out
    assert len(request_ids(state)) == 103
    assert out.count("cannot be written now") == 1
    assert out.count("written again") == 1


def test_a_full_disk_at_exit_says_what_is_lost(make_runtime, small_disk, caplog):
    state = small_disk / "state"
    rt = make_runtime(spec("Printer", "printer.handler"), state_dir=state)
    rt.invoke("Printer", {})
    rt.flush()
    fill(small_disk)
    invoke_in_thread(lambda: rt.invoke("Printer", {}), 100)
    rt.flush()
    assert rt.service.writer.waiting == "disk full"
    lost = rt.service.writer.pending()
    rt.close()  # within its grace, not the minute given to a slow writer
    [line] = messages(caplog, "are lost")
    assert line.startswith(f"{lost} invocation record(s)") and "disk full" in line


def test_the_writer_says_the_database_is_unusable_and_is_not_restarted(make_runtime, caplog):
    """A folder where the database should be, once the engine runs: the writer tells the engine
    (one line naming the file), keeps the records and writes them once the folder is gone."""
    rt = make_runtime(spec("Noop", "noop.handler"))
    state = rt.service.config.state_dir
    (state / DB_NAME).mkdir(parents=True)
    ids = [rt.invoke("Noop", {}).request_id for _ in range(5)]
    rt.flush()
    writer = rt.service.writer
    assert writer.waiting == "write error"
    pid = writer._child.pid
    time.sleep(1.5)  # some attempts
    assert writer._child.pid == pid
    [line] = messages(caplog, "cannot be written now")
    assert f"{state / DB_NAME}: it is a folder, not a database: move it away" in line
    assert not messages(caplog, "starting it again")
    (state / DB_NAME).rmdir()
    assert wait_for(lambda: writer.pending() == 0, 10)
    assert sorted(request_ids(state)) == sorted(ids)


def test_text_of_a_batch_whose_writer_died_before_its_commit_is_not_written_twice(tmp_path):
    """The writer appends a batch's log text, then commits its rows; killed in between, the
    text is in the file but the batch is not committed: the next writer cuts it off first."""
    state = tmp_path / "state"
    items = [("Fn", "2024/01/01/[$LATEST]abc", f"line {i}\n") for i in range(3)]
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from warmstart.observe.records import RecordStore
        store = RecordStore(Path({str(state)!r}), True, "w")
        store.committed()
        db = store._conn()
        db.create_function("die", 0, lambda: os._exit(9))
        db.execute("CREATE TEMP TRIGGER die BEFORE INSERT ON main.writers BEGIN SELECT die(); END")
        store.add({items!r})
        store.commit(1)
        """
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert p.returncode == 9, p.stderr
    assert log_text(state) == "line 0\nline 1\nline 2\n"  # appended, not committed
    store = RecordStore(state, True, "w")
    assert store.committed() == 0
    store.add(items)
    store.commit(1)
    store.close()
    assert log_text(state) == "line 0\nline 1\nline 2\n"


# -- databases that cannot be used ---------------------------------------------------------


def _database_of_5000_rows(db: Path) -> None:
    conn = connect(db.parent)
    conn.executemany(
        "INSERT INTO invocations (request_id, function, started_at) VALUES (?, ?, ?)",
        [(f"r{i}" * 10, "Fn", i) for i in range(5000)],
    )
    conn.commit()
    conn.close()  # the last connection: its log is written into the file


def _truncated(db: Path) -> None:
    _database_of_5000_rows(db)
    os.truncate(db, db.stat().st_size // 2)


KINDS: dict[str, Callable[[Path], None]] = {
    "garbage": lambda db: db.write_bytes(os.urandom(40_000)),
    "truncated": _truncated,
    "a folder": lambda db: db.mkdir(),
    "not a database": lambda db: db.write_text("name,value\nsome,csv\n" * 100),
}
SAYS = {
    "garbage": "it is not a SQLite database: move it away",
    "truncated": "it is corrupt (database disk image is malformed): move it away",
    "a folder": "it is a folder, not a database: move it away",
    "not a database": "it is not a SQLite database: move it away",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(APPS / "basic", tmp_path / "basic")
    shutil.copy(APPS / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(APPS.parent / "load" / "lambda.yml", tmp_path / "lambda.yml")
    (tmp_path / ".warmstart").mkdir()
    return tmp_path


def run(cwd: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *WARMSTART, *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=100
    )


def assert_one_clear_line(p: subprocess.CompletedProcess[str], says: str) -> None:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    [line] = [line for line in p.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith(f"Error: .warmstart/{DB_NAME}: {says}"), p.stderr


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "command", [("stats",), ("events",), ("events", "--redrive-all"), ("invoke", "Echo")]
)
def test_an_unusable_database_is_one_clear_line_from_the_cli(project, kind, command):
    KINDS[kind](project / ".warmstart" / DB_NAME)
    assert_one_clear_line(run(project, *command), SAYS[kind])


@pytest.mark.parametrize(
    "command",
    [
        ("serve", "--port", "0", "--api-port", "0"),
        ("bench", "cold", "Echo", "-n", "1"),
        ("bench", "warm", "Echo", "-n", "2"),
        ("tune", "Echo", "--memory", "128,256", "--num", "1"),
        ("load", "-c", "lambda.yml"),
    ],
)
def test_commands_that_start_an_engine_say_so_too(project, command):
    KINDS["garbage"](project / ".warmstart" / DB_NAME)
    assert_one_clear_line(run(project, *command), SAYS["garbage"])


def test_a_database_this_user_cannot_read_is_one_clear_line(project):
    db = project / ".warmstart" / DB_NAME
    db.write_bytes(b"")
    db.chmod(0)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root reads anything: without the capabilities that let it
        if not shutil.which("setpriv"):
            pytest.skip("as root, needs setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    says = "permission denied: let this user read and write it and its folder, or move it away"
    for command in (("stats",), ("events",), ("invoke", "Echo")):
        assert_one_clear_line(run(project, *command, prefix=prefix), says)
    api = (
        "from pathlib import Path; from warmstart.errors import StateDatabaseError\n"
        "from warmstart.stats import stats\n"
        "try: stats(Path('.warmstart'))\n"
        "except StateDatabaseError as e: print(e)\n"
    )
    p = subprocess.run(
        [*prefix, sys.executable, "-c", api], cwd=project, capture_output=True, text=True
    )
    assert p.stdout == f".warmstart/{DB_NAME}: {says}\n", p.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_an_unusable_database_is_a_state_database_error_in_python(tmp_path, kind):
    state = tmp_path / "state"
    state.mkdir()
    KINDS[kind](state / DB_NAME)
    for call in (
        lambda: connect(state),
        lambda: stats(state),
        lambda: list_events(state),
        lambda: query(state, "SELECT count(*) FROM invocations"),
    ):
        with pytest.raises(StateDatabaseError) as e:
            call()
        assert str(e.value).startswith(f"{state / DB_NAME}: {SAYS[kind]}")
        assert not e.value.full
    before = descendants(os.getpid())
    with pytest.raises(StateDatabaseError, match="move it away"):
        Runtime([spec("Noop", "noop.handler")], Config.resolve(state_dir=state))
    # nothing left running: environments, fork servers, the records writer
    assert wait_for(lambda: descendants(os.getpid()) <= before, 10)


def test_a_state_folder_that_is_a_file_is_a_clear_error(tmp_path, project):
    (tmp_path / "state").write_text("")
    for call in (lambda: connect(tmp_path / "state"), lambda: stats(tmp_path / "state")):
        with pytest.raises(StateDatabaseError, match="it is not a folder"):
            call()
    shutil.rmtree(project / ".warmstart")
    (project / ".warmstart").write_text("")
    for command in (("invoke", "Echo"), ("stats",)):
        p = run(project, *command)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert "Error: .warmstart: it is not a folder: give another --state-dir" in p.stderr


def test_a_full_disk_when_opening_is_a_state_database_error(small_disk):
    fill(small_disk)
    with pytest.raises(StateDatabaseError, match="no space left on the device") as e:
        connect(small_disk / "state")
    assert e.value.full


def test_corruption_found_after_opening_is_a_state_database_error_too(tmp_path):
    """A database whose first pages are intact opens; what it finds later is reported alike."""
    state = tmp_path / "state"
    path = state / DB_NAME
    _database_of_5000_rows(path)
    data = bytearray(path.read_bytes())
    data[16384:] = os.urandom(len(data) - 16384)  # past the schema's pages
    path.write_bytes(data)
    with pytest.raises(StateDatabaseError, match="it is corrupt"):
        query(state, "SELECT count(*), max(request_id) FROM invocations")
