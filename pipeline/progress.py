"""One progress line per component, from the local orchestrator's own log.

LocalDagRunner logs "Component X is running/finished" and whether a cached
execution was reused; this handler turns those into
``  Transform                   done     12.3s`` lines and keeps the full log
in a file, so the terminal stays readable.
"""
from __future__ import annotations

import logging
import re
import sys
import time
from typing import Dict, List, Optional, TextIO, Tuple

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

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        super().__init__(level=logging.INFO)
        self.stream = stream
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
    file_handler = logging.FileHandler(log_file, mode="w")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    progress = ProgressHandler()
    for handler in (file_handler, progress):
        handler._pipeline_run = True
        root.addHandler(handler)
    return progress


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
