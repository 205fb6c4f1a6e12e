"""Ending a command-line process that has loaded TensorFlow models, without teardown noise.

At interpreter exit, TensorFlow's ``AtomicFunction.__del__`` runs after the
modules it needs are gone and prints "Exception ignored in ... TypeError:
'NoneType' object is not subscriptable" once per loaded function: a screen of
tracebacks after a run that succeeded. Commands whose work is done (every file
they write closed, ML Metadata committed) end through ``exit_now`` instead:
the exit handlers run (``atexit``: they remove temporary files), logging and the standard
streams are flushed, then the process exits without the interpreter's teardown (no
finalizers).
"""
import atexit
import os
import sys


def exit_now(code: int) -> None:
    """Runs the exit handlers, flushes logging, stdout and stderr, then ends the process
    with ``code``.

    The exit handlers (``atexit``) are what a normal exit runs before the teardown, and
    they clean up: TensorFlow's autograph, for one, writes each converted function's
    source to a temporary file and removes it there (skipping them left thousands of
    ``__autograph_generated_file*.py`` in the temporary directory)."""
    # logging.shutdown, which flushes every handler, is one of them
    atexit._run_exitfuncs()  # noqa: SLF001 (the public way to run them is the teardown skipped here)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(code)
