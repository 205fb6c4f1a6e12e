"""Start a gateway process ahead of need; ``server.launch`` takes it instead of a cold start.

Why: a cold ``python -m serving start`` spends most of its start-up importing
TensorFlow and the gateway's modules. A caller that knows it will launch a
gateway later (the local pipeline runner: its InfraValidator comes last)
starts ``python -m serving.warm_start`` first, which does those imports while
the caller works and then waits for its arguments (serving/warm_start.py).

This module is light on purpose (no TensorFlow): the pipeline calls it before
importing TFX, so the two imports overlap on the machine's two cores.

Only a ``launch`` that inherits this process's environment (``env=None``)
takes the warm process, at most once; any other launch starts cold, as
before. A warm process nobody took is terminated by ``stop``, on leaving
``started_early`` or at interpreter exit; if its parent dies first, the end
of its stdin makes it exit 0 once its imports are done.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any, Iterator, Optional, Sequence, Tuple

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_EXIT_GRACE_S = 5.0


def child_env(env: Optional[dict] = None) -> dict:
    """``env`` (default: this process's) with the repo root on PYTHONPATH, so a child
    gateway runs without the project installed."""
    out = dict(os.environ if env is None else env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, out.get("PYTHONPATH")) if p)
    return out


class WarmGateway:
    """One ``python -m serving.warm_start`` process, handed its arguments at most once.
    ``server.launch`` starts one right away when none was started ahead (or ``env`` differs)."""

    def __init__(self, env: Optional[dict] = None) -> None:
        self.stderr: IO[str] = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.warm_start"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=child_env(env))
        self._taken = False

    def take(self, arguments: Sequence[str]) -> Optional[Tuple[subprocess.Popen, IO[str]]]:
        """The process and its stderr file, told to serve with ``arguments`` (those of
        ``python -m serving start``); None if it was taken already or has died."""
        if self._taken:
            return None
        self._taken = True
        if self.process.poll() is not None:
            self._end()
            return None
        try:
            # stdin stays open: the process stops when it closes (server.terminate, or our exit)
            self.process.stdin.write(json.dumps(list(arguments)) + "\n")
            self.process.stdin.flush()
        except OSError:  # it died between the poll and the write
            self._end()
            return None
        return self.process, self.stderr

    def stop(self) -> None:
        """Ends an untaken process: nothing in it to lose (no model, no request)."""
        if self._taken:
            return
        self._taken = True
        if self.process.poll() is None:
            self.process.terminate()
        self._end()

    def _end(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.stderr.close()


_lock = threading.Lock()
_warm: Optional[WarmGateway] = None


def start() -> WarmGateway:
    """Starts the warm gateway process (once; a second call returns the same one)."""
    global _warm
    with _lock:
        if _warm is None:
            _warm = WarmGateway()
        return _warm


def take(arguments: Sequence[str]) -> Optional[Tuple[subprocess.Popen, IO[str]]]:
    """The started warm process told to serve ``arguments``, or None (none started, or
    taken already): the caller then starts a gateway cold."""
    global _warm
    with _lock:
        warm, _warm = _warm, None
    return None if warm is None else warm.take(arguments)


def stop() -> None:
    """Ends a started warm process nobody took."""
    global _warm
    with _lock:
        warm, _warm = _warm, None
    if warm is not None:
        warm.stop()


@contextlib.contextmanager
def started_early(enabled: bool = True) -> Iterator[Any]:
    """A warm gateway process for the duration of the block (when ``enabled``)."""
    if not enabled:
        yield None
        return
    warm = start()
    try:
        yield warm
    finally:
        stop()


atexit.register(stop)
