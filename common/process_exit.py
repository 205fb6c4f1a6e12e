"""Ending a command-line process that has loaded TensorFlow models, without teardown noise.

At interpreter exit, TensorFlow's ``AtomicFunction.__del__`` runs after the
modules it needs are gone and prints "Exception ignored in ... TypeError:
'NoneType' object is not subscriptable" once per loaded function: a screen of
tracebacks after a run that succeeded. Commands whose work is done (every file
they write closed, ML Metadata committed) end through ``exit_now`` instead:
logging and the standard streams are flushed, then the process exits without
the interpreter's teardown (no atexit handlers, no finalizers).
"""
import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flushes logging, stdout and stderr, then ends the process with ``code``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            pass
    os._exit(code)
