"""The request log's writer process (``serving.log_process``): same records as the
writer thread, no row lost when the child or the gateway dies."""
import glob
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from serving import log_process
from serving.request_log import RequestLog, read_window
from tests.serving.test_request_log import DTYPES, REPO, SPAN0, T0, WINDOW, served_rows, value_of


def log_requests(log, first, count, rows=None):
    rows = rows or served_rows()[:3]
    for i in range(first, first + count):
        assert log.log(request_id=f"r{i}", model="taxi", version=2, role="primary",
                       features=[dict(row, fare=float(i)) for row in rows],
                       outputs=[{"probabilities": [0.2, 0.8], "classes": 1}] * len(rows),
                       latency_ms=1.0 + i, timestamp=T0 + i)


def records(directory):
    return sorted(e.SerializeToString() for e in read_window(directory, SPAN0))


def state_of(pid):
    """The process's state letter (Z: a zombie), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def wait_gone(pid, seconds=20):
    deadline = time.monotonic() + seconds
    while state_of(pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    return state_of(pid) in (None, "Z")


def nice_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_the_child_writes_exactly_the_records_the_thread_writes(tmp_path):
    with RequestLog(str(tmp_path / "thread"), DTYPES, window_seconds=WINDOW) as thread_log:
        log_requests(thread_log, 0, 40)
    with RequestLog(str(tmp_path / "child"), DTYPES, window_seconds=WINDOW, writer_process=True) as log:
        assert log.writer_pid not in (None, os.getpid()) and state_of(log.writer_pid) not in (None, "Z")
        log_requests(log, 0, 40)
        assert log.flush()
        stats = log.stats()
        pid = log.writer_pid
        # the requests go first when the cores are contended
        assert nice_of(pid) == min(19, os.nice(0) + log_process.NICENESS)
    assert (stats["written_rows"], stats["failed_rows"], stats["writer_in_process"]) == (120, 0, 0)
    assert stats["files_opened"] == 1
    assert len(records(str(tmp_path / "child"))) == 120
    assert records(str(tmp_path / "child")) == records(str(tmp_path / "thread"))
    assert wait_gone(pid)  # close ends the child


def test_a_killed_child_loses_no_row_and_the_gateway_writes_on(tmp_path, caplog):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, writer_process=True) as log:
        log_requests(log, 0, 10)
        assert log.flush()
        os.kill(log.writer_pid, signal.SIGKILL)
        assert wait_gone(log.writer_pid)
        with caplog.at_level(logging.ERROR, logger="serving.log_process"):
            log_requests(log, 10, 10)
            assert log.flush()
        stats = log.stats()
    assert (stats["written_rows"], stats["failed_rows"], stats["writer_in_process"]) == (60, 0, 1)
    assert "writer process" in caplog.text and "own process" in caplog.text
    fares = sorted(value_of(e, "fare")[0] for e in read_window(str(tmp_path), SPAN0))
    assert fares == sorted(float(i) for i in range(20) for _ in range(3))
    assert glob.glob(str(tmp_path / f"span-{SPAN0}" / "primary-*-local-*.tfrecord"))


def test_ctrl_c_and_sigterm_to_the_process_group_do_not_stop_the_child(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, writer_process=True) as log:
        log_requests(log, 0, 5)
        assert log.flush()
        for sig in (signal.SIGINT, signal.SIGTERM):
            os.kill(log.writer_pid, sig)
        time.sleep(0.3)
        log_requests(log, 5, 5)
        assert log.flush()
        assert log.stats()["writer_in_process"] == 0
    assert len(read_window(str(tmp_path), SPAN0)) == 30


def test_rows_that_cannot_be_sent_are_counted_and_their_neighbours_written(tmp_path):
    with RequestLog(str(tmp_path), {"fare": "float"}, window_seconds=WINDOW, writer_process=True) as log:
        for i, row in enumerate([{"fare": 1.0}, {"fare": 2.0, "extra": threading.Lock()}, {"fare": 3.0}]):
            log.log(request_id=f"r{i}", model="m", version=1, role="primary", features=[row],
                    outputs=[0.5], latency_ms=1.0, timestamp=T0)
        assert log.flush()
        stats = log.stats()
    assert (stats["written_rows"], stats["failed_rows"], stats["writer_in_process"]) == (2, 1, 0)
    assert sorted(value_of(e, "fare")[0] for e in read_window(str(tmp_path), SPAN0)) == [1.0, 3.0]


def test_a_row_answered_after_close_is_written_without_an_error(tmp_path, caplog):
    log = RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, writer_process=True)
    log_requests(log, 0, 2)
    pid = log.writer_pid
    log.close()
    assert wait_gone(pid)
    with caplog.at_level(logging.ERROR):
        log_requests(log, 2, 1)
    assert "writer process" not in caplog.text
    stats = log.stats()
    assert (stats["written_rows"], stats["late_rows"], stats["failed_rows"]) == (9, 3, 0)
    assert len(read_window(str(tmp_path), SPAN0)) == 9


def test_a_gateway_killed_with_sigkill_leaves_every_row_it_sent_and_no_writer_behind(tmp_path):
    """kill -9 of the logging process: the child writes what it was sent, fsyncs and exits."""
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from serving.request_log import RequestLog
        log = RequestLog(sys.argv[1], {{"fare": "float", "company": "string"}}, window_seconds={WINDOW},
                         writer_process=True, flush_seconds=30)
        print(log.writer_pid, flush=True)
        for i in range(2000):
            log.log(request_id=f"r{{i}}", model="m", version=1, role="primary", latency_ms=1.0,
                    timestamp={T0}, features=[{{"fare": float(i), "company": "x" * 200}}], outputs=[0.5])
        while log.stats()["written_rows"] < 1000:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env, timeout=240,
                            stdout=subprocess.PIPE, text=True)
    assert result.returncode == -signal.SIGKILL
    assert wait_gone(int(result.stdout.split()[0]))
    fares = sorted(value_of(e, "fare")[0] for e in read_window(str(tmp_path), SPAN0))
    assert 1000 <= len(fares) <= 2000
    assert fares == [float(i) for i in range(len(fares))]
