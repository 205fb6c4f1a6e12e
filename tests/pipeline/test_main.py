"""``python -m pipeline``: expected failures end in a short message and an exit code,
never a traceback on the terminal.

The orchestrator is replaced by a function that raises what a failing component
raises (a whole run takes minutes; tests/e2e runs the real failures).
"""
import logging
import os

import pytest

from common.config import ConfigError
from components.anomalies_gate import DataAnomaliesError
from pipeline import local_runner
from pipeline.__main__ import main
from pipeline.progress import _not_the_failed_execution
from tests.conftest import TAXI_CONFIG


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """A run rewires the root logger (pipeline.progress.attach) to this test's streams: undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for added in [h for h in root.handlers if h not in handlers and isinstance(h, logging.FileHandler)]:
        added.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _args(command, tmp_path, *extra):
    return [command, "--config", TAXI_CONFIG, "--set", f"run_dir={tmp_path}/runs",
            "--set", f"serving.push_dir={tmp_path}/serving", *extra]


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: ") and "config file not found" in err
    assert len(err.strip().splitlines()) == 1
    assert main(_args("run", tmp_path, "--set", "evaluation.min_margin_over_baselines=2")) == 2
    assert "evaluation.min_margin_over_baselines" in capsys.readouterr().err


def test_report_before_any_run(tmp_path, capsys):
    assert main(_args("report", tmp_path)) == 1
    err = capsys.readouterr().err
    assert "no run of taxi yet" in err and "Traceback" not in err


def _fail_with(monkeypatch, error):
    def run_local(cfg, tune=None, say=print):
        logging.getLogger("absl").error("Execution %d failed.", 6)  # what TFX's launcher logs
        raise error
    monkeypatch.setattr(local_runner, "run_local", run_local)


def test_data_anomalies_stop_the_run_with_the_message_only(tmp_path, capsys, monkeypatch):
    _fail_with(monkeypatch, DataAnomaliesError("data validation failed: 1 anomaly\n  split 'eval': ..."))
    assert main(_args("run", tmp_path)) == 1
    err = capsys.readouterr().err
    assert "RUN FAILED" in err and "data validation failed: 1 anomaly" in err
    assert "Nothing was pushed" in err
    assert "Traceback" not in err and "traceback in" not in err
    assert "Execution 6 failed" not in err


def test_an_unexpected_error_keeps_its_traceback_in_the_log(tmp_path, capsys, monkeypatch):
    _fail_with(monkeypatch, ZeroDivisionError("division by zero"))
    assert main(_args("run", tmp_path)) == 1
    err = capsys.readouterr().err
    log_file = os.path.join(tmp_path, "runs", "taxi", "logs", "run.log")
    assert "RUN FAILED" in err and f"(ZeroDivisionError; traceback in {log_file})" in err
    assert "Traceback" not in err
    with open(log_file) as f:
        log = f.read()
    assert "Traceback (most recent call last)" in log and "ZeroDivisionError: division by zero" in log


def test_an_interrupted_run(tmp_path, capsys, monkeypatch):
    _fail_with(monkeypatch, KeyboardInterrupt())
    assert main(_args("run", tmp_path)) == 130
    assert "RUN INTERRUPTED" in capsys.readouterr().err


@pytest.mark.parametrize("message, args, shown", [
    ("Execution %d failed.", (6,), False),
    ("Execution %d failed: %s", (6, "x"), True),
    ("[%s] Input resolution error: %s", ("Trainer", "x"), True),
])
def test_only_the_launchers_failed_execution_line_is_kept_off_the_terminal(message, args, shown):
    record = logging.LogRecord("absl", logging.ERROR, "launcher.py", 619, message, args, None)
    assert _not_the_failed_execution(record) is shown


def test_config_errors_raised_during_a_run_are_expected(tmp_path, capsys, monkeypatch):
    _fail_with(monkeypatch, ConfigError("configs/taxi.yaml: key 'beam.extra_args.flink': expected ..."))
    assert main(_args("run", tmp_path)) == 1
    err = capsys.readouterr().err
    assert "key 'beam.extra_args.flink'" in err and "traceback in" not in err
