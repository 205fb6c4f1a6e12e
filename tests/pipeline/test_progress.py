"""pipeline.progress: one line per component from the orchestrator's log."""
import io
import logging

from pipeline.progress import ProgressHandler


def test_progress_lines_from_orchestrator_log():
    out = io.StringIO()
    handler = ProgressHandler(out)
    logger = logging.getLogger("progress-test")
    logger.propagate = False  # the root logger may hold another test's run handlers
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("Component %s is running.", "Transform")
    logger.info("Component %s is finished.", "Transform")
    logger.info("Component %s is running.", "Trainer")
    logger.info("A cached execution %d is used.", 7)
    logger.info("Component %s is finished.", "Trainer")
    logger.info("Component %s is running.", "Evaluator")
    handler.fail()
    assert handler.states == {"Transform": "done", "Trainer": "cached", "Evaluator": "FAILED"}
    assert out.getvalue().splitlines()[1].split()[:2] == ["Trainer", "cached"]


def test_library_output_goes_to_the_log_and_progress_to_the_terminal(tmp_path, capfd):
    """What the libraries print during a run (Python prints and stderr writes, where
    warnings go, and C-level writes to descriptor 2) lands in the run's log, between
    the log records, none lost or overwritten; the progress lines and the lines said
    to the terminal reach the terminal."""
    import os
    import sys

    from pipeline.progress import attach, library_output_to

    log_file = str(tmp_path / "run.log")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # attach() rewires the root logger: put it back
    attach(log_file)
    logger = logging.getLogger("progress-output-test")
    try:
        with library_output_to(log_file) as terminal:
            logger.info("Component %s is running.", "Tuner")
            print("Search space summary")
            sys.stderr.write("a library's stderr line\n")
            os.write(2, b"W0000 a C++ warning\n")
            print("  said to the user", file=terminal)
            logger.info("Component %s is finished.", "Tuner")
        print("after the run")
    finally:
        for added in [h for h in root.handlers if h not in handlers and isinstance(h, logging.FileHandler)]:
            added.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capfd.readouterr()
    assert "Search space summary" not in out + err and "C++ warning" not in out + err
    assert "stderr line" not in out + err
    assert "  said to the user" in out and "after the run" in out
    assert out.splitlines()[1].split()[:2] == ["Tuner", "done"]
    with open(log_file) as f:
        log = f.read()
    for text in ("Component Tuner is running.", "Search space summary", "a library's stderr line",
                 "W0000 a C++ warning", "Component Tuner is finished."):
        assert text in log, text
    assert log.index("is running.") < log.index("Search space") < log.index("is finished.")
