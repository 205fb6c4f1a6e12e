"""A gateway process started before it is needed: ``python -m serving.warm_start``.

Why: ``python -m serving start`` spends most of its start-up importing
TensorFlow and the gateway's modules (about 5 s of the pipeline's
InfraValidator on this machine, before the model is even read). The local
pipeline runner starts this process when the DAG starts (``serving.prestart``);
it does those imports on a core the DAG's early components leave idle and
then waits. When the InfraValidator needs a gateway, ``server.launch`` hands
it the same arguments ``python -m serving start`` would get, as one JSON line
on its stdin, and it serves exactly as that command does (same code, same
``LISTENING <port>`` line, same signals and exit code).

Protocol: one line on stdin, a JSON list of strings (the arguments after
``start``); end of input without a line (the caller did not need a gateway)
exits 0 without serving. Anything else is refused with exit code 2 and a
message naming what was expected. After the line the caller keeps stdin open:
its end (the caller exited, even by SIGKILL, which runs no clean-up) stops the
gateway as SIGTERM does, so a killed pipeline leaves no gateway behind.
``server.launch`` starts every gateway it launches this way, ahead or not.
"""
import json
import os
import signal
import sys
import threading
from typing import List, Optional, TextIO

from common.tf_environment import set_defaults  # noqa: E402

set_defaults()

# The imports ``serving start`` pays for, done before the arguments arrive.
import tensorflow  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position

import serving.server  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
from serving.cli import exit_with  # noqa: E402  pylint: disable=wrong-import-position


class WarmStartError(ValueError):
    """The line on stdin is not a JSON list of argument strings."""


def read_arguments(stream: TextIO) -> Optional[List[str]]:
    """The ``serving start`` arguments from one JSON line; None at end of input."""
    line = stream.readline()
    if not line:
        return None
    try:
        arguments = json.loads(line)
    except json.JSONDecodeError as err:
        raise WarmStartError(f"stdin: expected one JSON list of argument strings, got {line[:200]!r} "
                             f"({err})") from err
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise WarmStartError(f"stdin: expected a JSON list of argument strings, got {line[:200]!r}")
    return arguments


def stop_when_closed(stream: TextIO) -> threading.Thread:
    """A daemon thread that sends this process SIGTERM once ``stream`` ends (the caller's end
    of the pipe closed: it stopped the gateway or died)."""

    def watch() -> None:
        while stream.read(4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="stop-with-caller", daemon=True)
    thread.start()
    return thread


def main() -> None:
    """Waits for the arguments, then ends as ``python -m serving start <arguments>`` ends, or
    when the caller's end of stdin closes."""
    try:
        arguments = read_arguments(sys.stdin)
    except WarmStartError as err:
        print(f"serving.warm_start: {err}", file=sys.stderr)
        sys.exit(2)
    if arguments is None:
        sys.exit(0)
    stop_when_closed(sys.stdin)
    exit_with(["start", *arguments])


if __name__ == "__main__":
    main()
