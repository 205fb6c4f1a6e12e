"""Which pushed version directories are ready to load, and which failed to.

Why: a version directory appears under the model base path before it is
loadable when it is copied in place rather than renamed (``cp -r``,
``gsutil rsync``, a half-finished ``kubectl cp``), and a pushed version can be
broken (a truncated ``saved_model.pb``). The gateway must neither load a copy
in progress nor retire a working version for a broken one, and must pick up
a broken version once its files are fixed in place. The rules:

* **complete**: the directory name is a positive integer (the Pusher's
  ``.staging-*`` directories are not) and it holds ``saved_model.pb`` (or
  ``.pbtxt``), ``variables/variables.index`` and every
  ``variables.data-NNNNN-of-MMMMM`` shard the shard names announce.
  ``tf.saved_model.save`` always writes these, also for a model without
  variables.
* **settled**: nothing in the directory changed for ``settle_s`` seconds
  (the gateway's poll interval). The fingerprint is every entry's path, size,
  mtime and ctime; ctime cannot be preserved by a copy (``cp -p``, rsync), so
  a directory first seen with all ctimes older than ``settle_s`` is settled at
  once (a gateway starting on pushed versions waits for nothing), and a
  directory that changes restarts the clock.
* **failed**: a load of this exact fingerprint failed; it is not retried until
  the fingerprint changes (files fixed or replaced in place), then it is
  settled and loaded again.

The Pusher (``components/pusher.py``) copies into ``.staging-<v>`` and renames
it into place, so its versions are complete at first sight and settle one
poll interval after the rename.
"""
import dataclasses
import os
import re
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
VARIABLES_INDEX = os.path.join("variables", "variables.index")
_SHARD = re.compile(r"^variables\.data-(\d{5})-of-(\d{5})$")

READY, SETTLING, FAILED = "ready", "settling", "failed"

Fingerprint = Tuple[Tuple[str, int, int, int], ...]


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """A failed load: of which fingerprint, TF Serving's error code name, and why."""
    fingerprint: Fingerprint
    error_code: str
    message: str


def is_complete(path: str) -> bool:
    """A version directory with a SavedModel proto, its variables index and all data shards."""
    if not any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES):
        return False
    if not os.path.isfile(os.path.join(path, VARIABLES_INDEX)):
        return False
    try:
        names = os.listdir(os.path.join(path, "variables"))
    except OSError:
        return False
    shards = [m for m in map(_SHARD.match, names) if m]
    if not shards:
        return False
    total = int(shards[0].group(2))
    present = {int(m.group(1)) for m in shards if int(m.group(2)) == total}
    return present == set(range(total))


def complete_versions(base_path: str) -> List[int]:
    """Version numbers under a model base path whose directory is complete."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and int(n) > 0 and is_complete(os.path.join(base_path, n)))


def fingerprint(path: str) -> Tuple[Fingerprint, float]:
    """Every entry's (relative path, size, mtime_ns, ctime_ns), and the newest change time (s)."""
    entries = []
    newest = 0
    for directory, dirs, files in os.walk(path):
        dirs.sort()
        for name in [None] + sorted(files):
            full = directory if name is None else os.path.join(directory, name)
            try:
                st = os.stat(full)
            except OSError:
                continue  # removed while walking: the next poll sees the new state
            entries.append((os.path.relpath(full, path), st.st_size if name else 0,
                            st.st_mtime_ns, st.st_ctime_ns))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return tuple(entries), newest / 1e9


@dataclasses.dataclass
class _Seen:
    fingerprint: Fingerprint
    since: float  # wall-clock time from which it has been unchanged


class VersionWatch:
    """Settle clocks and load failures of version directories (thread-safe)."""

    def __init__(self, settle_s: float, clock: Callable[[], float] = time.time) -> None:
        self.settle_s = settle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: Dict[str, _Seen] = {}
        self._failures: Dict[str, LoadFailure] = {}

    def check(self, path: str) -> str:
        """READY, SETTLING or FAILED for a complete version directory that is not loaded."""
        current, newest = fingerprint(path)
        now = self._clock()
        with self._lock:
            failure = self._failures.get(path)
            if failure is not None:
                if failure.fingerprint == current:
                    return FAILED
                del self._failures[path]  # changed since: fixed in place, try again once settled
            seen = self._seen.get(path)
            if seen is None:
                seen = self._seen[path] = _Seen(current, min(now, newest))
            elif seen.fingerprint != current:
                seen.fingerprint, seen.since = current, now
            return READY if now - seen.since >= self.settle_s else SETTLING

    def last_state(self, path: str) -> str:
        """``check``'s answer as of the last check (a check if there was none):
        cheap enough for the request path, at most one poll interval stale."""
        with self._lock:
            seen = self._seen.get(path)
            if seen is not None:
                failure = self._failures.get(path)
                if failure is not None and failure.fingerprint == seen.fingerprint:
                    return FAILED
                return READY if self._clock() - seen.since >= self.settle_s else SETTLING
        return self.check(path)

    def record_failure(self, path: str, error: BaseException) -> LoadFailure:
        """Remembers that loading ``path`` as last checked failed with ``error``."""
        with self._lock:
            seen = self._seen.get(path)
            failure = LoadFailure(seen.fingerprint if seen else fingerprint(path)[0],
                                  error_code_of(error), _first_line(error))
            self._failures[path] = failure
            return failure

    def failure(self, path: str) -> Optional[LoadFailure]:
        with self._lock:
            return self._failures.get(path)

    def forget_except(self, paths: Iterable[str]) -> None:
        """Drops what is known of directories other than ``paths`` (deleted or loaded ones)."""
        keep = set(paths)
        with self._lock:
            for table in (self._seen, self._failures):
                for path in [p for p in table if p not in keep]:
                    del table[path]


# gRPC / TF canonical status codes, by number (``tf.errors.OpError.error_code``).
_CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
               "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
               "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
               "UNAUTHENTICATED")


def error_code_of(error: BaseException) -> str:
    """TF Serving's status code name for a load error (UNKNOWN unless TF said otherwise)."""
    code = getattr(error, "error_code", None)
    if isinstance(code, int) and 0 < code < len(_CODE_NAMES):
        return _CODE_NAMES[code]
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND"
    return "UNKNOWN"


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().split("\n")[0][:500]
