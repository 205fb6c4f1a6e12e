"""One progress line per component, from the local orchestrator's own log.

LocalDagRunner logs "Component X is running/finished" and whether a cached
execution was reused; this handler turns those into
``  Transform                   done     12.3s`` lines and keeps the full log
in a file, so the terminal stays readable. ``library_output_to`` sends what
the libraries print while the DAG runs to the same file.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from typing import Dict, Iterator, List, Optional, TextIO, Tuple

from components.accepted_statistics import RESOLVER_ID as ACCEPTED_RESOLVER_ID

_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution \d+ is used\.")
_SKIPPED = re.compile(r"Skipping (component|execution for)")
# A pipeline's first run has no accepted statistics yet: the gate says so ("drift not checked"),
# while TFX logs the empty resolution as an error with a traceback. The log file keeps it.
_NO_ACCEPTED_STATISTICS = re.compile(r"\[%s\] Input resolution error" % re.escape(ACCEPTED_RESOLVER_ID))


class _ExpectedEmptyResolution(logging.Filter):
    """Keeps the first run's empty accepted-statistics resolution off the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _NO_ACCEPTED_STATISTICS.search(record.getMessage())


class ProgressHandler(logging.Handler):
    """Prints a line per finished component and records (name, state, seconds)."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        super().__init__(level=logging.INFO)
        self.stream = stream or sys.stdout  # the terminal, bound before library_output_to
        self.rows: List[Tuple[str, str, float]] = []
        self.current: Optional[str] = None
        self._start = 0.0
        self._state = "done"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if m := _RUNNING.search(message):
            self.current, self._start, self._state = m.group(1), time.time(), "done"
        elif _CACHED.search(message):
            self._state = "cached"
        elif _SKIPPED.search(message):
            self._state = "skipped"
        elif (m := _FINISHED.search(message)) and m.group(1) == self.current:
            self._report(self._state)

    def fail(self) -> None:
        """Marks the component that was running when the run raised."""
        if self.current and (not self.rows or self.rows[-1][0] != self.current):
            self._report("FAILED")

    def _report(self, state: str) -> None:
        seconds = time.time() - self._start
        self.rows.append((self.current, state, seconds))
        self.stream.write(f"  {self.current:<34} {state:<8} {seconds:7.1f}s\n")
        self.stream.flush()

    @property
    def states(self) -> Dict[str, str]:
        return {name: state for name, state, _ in self.rows}


def _not_the_failed_execution(record: logging.LogRecord) -> bool:
    """Drops the launcher's "Execution N failed." from the terminal: the run's
    failure is reported there once, with its cause (pipeline.__main__)."""
    return record.msg != "Execution %d failed."


def attach(log_file: str) -> ProgressHandler:
    """Routes TFX/absl INFO logs to ``log_file`` and progress lines to stdout."""
    from absl import logging as absl_logging

    absl_logging.use_absl_handler()
    terminal = absl_logging.get_absl_handler()
    terminal.setLevel(logging.ERROR)  # terminal: errors only
    if _not_the_failed_execution not in terminal.filters:
        terminal.addFilter(_not_the_failed_execution)
    if not any(isinstance(f, _ExpectedEmptyResolution) for f in terminal.filters):
        terminal.addFilter(_ExpectedEmptyResolution())
    absl_logging.set_verbosity(absl_logging.INFO)
    tf_logger = logging.getLogger("tensorflow")  # has its own stderr handler
    tf_logger.handlers.clear()
    tf_logger.propagate = True
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for old in [h for h in root.handlers if getattr(h, "_pipeline_run", False)]:
        root.removeHandler(old)  # a previous run in this process
        old.close()
    open(log_file, "w").close()  # a new log per run; every writer then appends (library_output_to)
    file_handler = logging.FileHandler(log_file, mode="a")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    progress = ProgressHandler()
    for handler in (file_handler, progress):
        handler._pipeline_run = True
        root.addHandler(handler)
    return progress


@contextlib.contextmanager
def library_output_to(log_file: str) -> Iterator[TextIO]:
    """While the DAG runs, what the libraries print goes to ``log_file``, not the terminal;
    yields the terminal's stdout for lines meant for the user.

    Why: the components run in this process, and their libraries write straight to
    the terminal: Keras Tuner prints its search space and trial summaries, the TF.js
    converter a line per weight it narrows, TF's C++ code its warnings (to file
    descriptor 2), TFMA numpy's RuntimeWarnings: about a hundred lines between the
    progress lines of one taxi run, none of them the user's business unless the run
    fails (then the log holds them). Python-level writes are caught by swapping
    ``sys.stdout``/``sys.stderr`` (warnings too), C-level ones by pointing descriptor 2
    at the log. The progress lines keep the stream bound when ``attach`` ran.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    terminal, saved_err = sys.stdout, sys.stderr
    saved_fd2 = os.dup(2)
    with open(log_file, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        try:
            yield terminal
        finally:
            log.flush()
            sys.stdout, sys.stderr = terminal, saved_err
            os.dup2(saved_fd2, 2)
            os.close(saved_fd2)


def write_to_log_file(text: str) -> None:
    """Appends ``text`` (e.g. a traceback) to the run's log file, not to the terminal."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_pipeline_run", False) and isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.stream.write(text if text.endswith("\n") else text + "\n")
                handler.flush()
            finally:
                handler.release()
