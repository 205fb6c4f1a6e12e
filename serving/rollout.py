"""Rollouts: canary, shadow, blue-green promote and rollback, with no HTTP.

Why a separate module: the gateway (HTTP admin endpoints), the CLI
(``python -m serving rollout ...``) and the tests must change and read the same
rollout state, possibly from different processes at the same time. Everything
here works on two files and nothing else:

* ``models.config`` (TF Serving's own ``--model_config_file``, written through
  ``serving.models_config``): the ``stable`` and ``canary`` version labels and
  the served versions. Real TF Serving reads the same file, so
  ``/v1/models/<m>/labels/stable`` means the same version on both.
* a JSON state file: what TF Serving has no field for -- the canary traffic
  percentage, the shadow version, the history of previous stable versions (for
  rollback) and the last stable version seen (to notice external edits).

Served versions: a rollout change (and the bootstrap) pins the model's
version policy in models.config to ``specific`` {stable, canary, shadow,
previous stable}, because TF Serving answers a label only when its version is
loaded. Merely routing writes nothing, except the one-time bootstrap (no
``stable`` label yet: the newest version on disk becomes stable) and the
history record of a stable label changed by hand; reading the state
(``state()``, the admin API's GET) writes nothing at all.

Every change is validated first (versions must be on disk, percent in
[0, 100]; ``RolloutError`` names the field and what was expected), then
written atomically (temp file + rename) under an inter-process file lock.
Readers pick up edits made by another process on the next call (files are
re-read when their stat signature changes), so the CLI can change a rollout
while the gateway runs.

How the gateway uses it::

    controller = RolloutController(models_config_path, state_path, model_name,
                                   available_versions=backend.versions,
                                   base_path=model_base_path)
    # per request, before choosing a backend version:
    route = controller.route(request_id, explicit_version, explicit_label)
    answer = predict(route.primary, ...)            # returned to the client
    if route.shadow is not None:                    # answered, logged, never returned
        request_log.log(..., version=route.shadow, role="shadow")
    # admin endpoints (after the token check):
    controller.canary(version, percent) / shadow(version) / promote(version)
    controller.rollback() / clear() / state().to_dict()

Errors are raised, never answered here: ``serving.api.errors`` maps them to
TF Serving's answers in one place (``UnknownLabelError`` -> 400 "Unrecognized
servable version label", ``RouteVersionError`` -> 404 "Servable not found",
``NoVersionsError`` -> 503, any other ``RolloutError`` -> 400 with its text).

The routing hash is SHA-256 of the request id, so the split is deterministic
across processes and restarts: the same request id always reaches the same
version for a given canary percentage.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from serving import models_config
from serving.models_config import CANARY, STABLE, ModelEntry, ModelsConfigError
from serving.routing import Route

_STATE_FORMAT = 1
MAX_HISTORY = 50  # previous stable versions remembered for rollback


class RolloutError(ValueError):
    """A rollout request or file is invalid; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownLabelError(RolloutError):
    """An explicit label that models.config does not define (gateway: 400, as TF Serving).

    ``label`` is the label asked for, for TF Serving's message.
    """

    def __init__(self, label: str, message: str) -> None:
        super().__init__("label", message)
        self.label = label


class UnknownVersionError(RolloutError):
    """A version given to a rollout change that is not on disk (gateway: 400)."""


class RouteVersionError(UnknownVersionError):
    """A request's explicit version that is not on disk (gateway: 404, as TF Serving).

    A separate type because the same miss is a bad argument in an admin change
    but a missing servable in a request; ``model`` and ``version`` are kept for
    TF Serving's "Servable not found for request: Specific(<model>, <version>)".
    """

    def __init__(self, model: str, version: int, message: str) -> None:
        super().__init__("version", message)
        self.model = model
        self.version = version


class NoVersionsError(RolloutError):
    """No version of the model is on disk yet, so nothing can be routed (gateway: 503)."""


@dataclasses.dataclass(frozen=True)
class RolloutState:
    """The rollout as it stands: what ``state()`` returns and admin endpoints show."""
    stable: Optional[int]
    canary: Optional[int]
    canary_percent: float
    shadow: Optional[int]
    history: Tuple[int, ...]  # previous stable versions, oldest first
    updated_at: float         # epoch seconds of the last change (0.0: never changed)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe form (for the admin API and the CLI)."""
        return dataclasses.asdict(self) | {"history": list(self.history)}


@dataclasses.dataclass(frozen=True)
class _Json:
    """The JSON state file's content."""
    canary_percent: float = 0.0
    shadow: Optional[int] = None
    history: Tuple[int, ...] = ()
    stable_seen: Optional[int] = None
    updated_at: float = 0.0


def canary_bucket(request_id: str) -> float:
    """A deterministic number in [0, 100) for ``request_id``.

    SHA-256 rather than Python's ``hash()``: the latter is salted per process,
    and every gateway process must send a given request id the same way.
    """
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 * 100.0


class RolloutController:
    """Reads and changes the rollout of one model; thread- and process-safe.

    ``available_versions`` returns the versions on disk (the gateway's backend
    knows them). It is called when the rollout changes, on bootstrap and for
    explicit-version routes, so it should be cheap (a directory listing is).
    ``base_path`` is needed only if ``models.config`` does not exist yet (it is
    then created with this model's entry).
    """

    def __init__(self, models_config_path: str, state_path: str, model_name: str,
                 available_versions: Callable[[], Sequence[int]],
                 base_path: Optional[str] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config_path = os.path.abspath(models_config_path)
        self._state_path = os.path.abspath(state_path)
        self._lock_path = self._state_path + ".lock"
        self._model = model_name
        self._available = available_versions
        self._base_path = base_path
        self._clock = clock
        self._lock = threading.RLock()
        self._signature: Optional[Tuple[Any, Any]] = None
        self._entries: Dict[str, ModelEntry] = {}
        self._json = _Json()

    # ------------------------------------------------------------------ reads

    def state(self) -> RolloutState:
        """The current rollout, as the next routed request or change would see it.

        A pure read: it writes no file, so a status probe can never pin a
        version. Without a ``stable`` label yet it reports the newest version
        on disk (what the bootstrap would pick); a ``stable`` label changed by
        hand is reported with the previous one on the history, as the next
        write will record it.
        """
        with self._lock:
            self._reload()
            entry, state, _ = self._reconciled(self._entry(), self._json, None)
            return self._state_of(entry, state)

    def route(self, request_id: str, explicit_version: Optional[int] = None,
              explicit_label: Optional[str] = None) -> Route:
        """The version(s) that answer one request.

        Order: an explicit version (must be on disk), else an explicit label
        (must be in models.config), else the canary when the request id's hash
        falls under ``canary_percent``, else stable. The shadow version is
        attached whenever it is set and differs from the primary.
        """
        with self._lock:
            if explicit_version is not None and explicit_label is not None:
                raise RolloutError("version", "give either a version or a label, not both")
            self._ensure_stable()
            if explicit_version is not None:
                version = _as_version(explicit_version, "version")
                if version not in self._versions_on_disk():
                    raise RouteVersionError(
                        self._model, version, f"model '{self._model}' has no version {version} on disk "
                        f"(available: {sorted(self._versions_on_disk())})")
                return self._with_shadow(version, "version")
            labels = self._entry().labels
            if explicit_label is not None:
                if explicit_label not in labels:
                    raise UnknownLabelError(
                        explicit_label, f"model '{self._model}' has no version label {explicit_label!r} "
                        f"(defined: {sorted(labels)})")
                return self._with_shadow(labels[explicit_label], f"label:{explicit_label}")
            canary = labels.get(CANARY)
            if (canary is not None and canary != labels[STABLE]
                    and canary_bucket(request_id) < self._json.canary_percent):
                return self._with_shadow(canary, "canary")
            return self._with_shadow(labels[STABLE], "stable")

    # ---------------------------------------------------------------- changes

    def canary(self, version: Optional[int] = None, percent: float = 10) -> RolloutState:
        """Sends ``percent`` % of unlabelled traffic to ``version``.

        ``version`` defaults to the newest version on disk that is not stable.
        Sets the ``canary`` label in models.config (so TF Serving serves the
        same label) and the percentage in the JSON state.
        """
        percent = _as_percent(percent)

        def change(entry: ModelEntry, state: _Json, available: Tuple[int, ...]) -> Tuple[ModelEntry, _Json]:
            chosen = self._candidate(version, entry, available, "canary")
            return entry.with_label(CANARY, chosen), dataclasses.replace(state, canary_percent=percent)
        return self._change(change)

    def shadow(self, version: Optional[int] = None) -> RolloutState:
        """Makes ``version`` answer every request too; its answer is logged, never returned.

        ``version`` defaults to the newest version on disk that is not stable.
        """
        def change(entry: ModelEntry, state: _Json, available: Tuple[int, ...]) -> Tuple[ModelEntry, _Json]:
            chosen = self._candidate(version, entry, available, "shadow")
            return entry, dataclasses.replace(state, shadow=chosen)
        return self._change(change)

    def promote(self, version: Optional[int] = None) -> RolloutState:
        """Blue-green: moves ``stable`` to the candidate in one atomic write of models.config.

        The candidate is ``version``, else the canary, else the shadow. The old
        stable goes onto the history (for rollback); canary and shadow are
        cleared.
        """
        def change(entry: ModelEntry, state: _Json, available: Tuple[int, ...]) -> Tuple[ModelEntry, _Json]:
            stable = entry.labels[STABLE]
            chosen = version
            if chosen is None:
                canary, shadow = entry.labels.get(CANARY), state.shadow
                if canary is not None and shadow is not None and canary != shadow:
                    raise RolloutError(
                        "version", f"both canary ({canary}) and shadow ({shadow}) are set; "
                        "expected the version to promote")
                chosen = canary if canary is not None else shadow
                if chosen is None:
                    raise RolloutError(
                        "version", "no canary or shadow to promote; expected a version "
                        f"(on disk: {list(available)})")
            chosen = self._check_on_disk(chosen, available)
            if chosen == stable:
                raise RolloutError("version", f"version {chosen} is already stable; expected another version")
            entry = entry.with_label(STABLE, chosen).with_label(CANARY, None)
            history = (state.history + (stable,))[-MAX_HISTORY:]
            return entry, dataclasses.replace(state, history=history, shadow=None, canary_percent=0.0)
        return self._change(change)

    def rollback(self) -> RolloutState:
        """Moves ``stable`` back to the previous stable version still on disk.

        The version rolled back from is not pushed onto the history, so a second
        rollback goes one further back. Canary and shadow are cleared: a
        rollback returns to a known state.
        """
        def change(entry: ModelEntry, state: _Json, available: Tuple[int, ...]) -> Tuple[ModelEntry, _Json]:
            history = list(state.history)
            while history and history[-1] not in available:
                history.pop()
            if not history:
                if state.history:
                    raise RolloutError(
                        "history", f"no previous stable version is still on disk (history "
                        f"{list(state.history)}, on disk {list(available)})")
                raise RolloutError(
                    "history", "no previous stable version to roll back to (nothing was promoted yet)")
            previous = history.pop()
            entry = entry.with_label(STABLE, previous).with_label(CANARY, None)
            return entry, dataclasses.replace(state, history=tuple(history), shadow=None, canary_percent=0.0)
        return self._change(change)

    def clear(self) -> RolloutState:
        """Drops the canary (label and percentage) and the shadow."""
        def change(entry: ModelEntry, state: _Json, available: Tuple[int, ...]) -> Tuple[ModelEntry, _Json]:
            return entry.with_label(CANARY, None), dataclasses.replace(state, shadow=None, canary_percent=0.0)
        return self._change(change)

    # -------------------------------------------------------------- internals

    def _change(self, change: Callable[[ModelEntry, _Json, Tuple[int, ...]], Tuple[ModelEntry, _Json]]
                ) -> RolloutState:
        """Locks (thread + process), re-reads both files, applies ``change``, writes.

        Re-reading under the file lock means two processes changing the rollout
        at once are serialized, and neither overwrites the other's change.
        """
        with self._lock, self._file_lock():
            self._signature = None
            self._reload()
            available = self._versions_on_disk()
            self._bootstrap(available)
            entry, state = change(self._entry(), self._json, available)
            state = dataclasses.replace(state, updated_at=float(self._clock()),
                                        stable_seen=entry.labels[STABLE])
            self._commit(entry, state, available)
            return self._state()

    def _candidate(self, version: Optional[int], entry: ModelEntry, available: Tuple[int, ...],
                   what: str) -> int:
        """``version`` checked, or the newest version on disk that is not stable."""
        stable = entry.labels[STABLE]
        if version is None:
            others = [v for v in available if v != stable]
            if not others:
                raise RolloutError(
                    "version", f"expected a version other than stable ({stable}) on disk to "
                    f"{what}; on disk: {list(available)}")
            return max(others)
        chosen = self._check_on_disk(version, available)
        if chosen == stable:
            raise RolloutError("version", f"version {chosen} is already stable; expected another version")
        return chosen

    def _with_shadow(self, primary: int, reason: str) -> Route:
        shadow = self._json.shadow
        return Route(primary=primary, shadow=shadow if shadow != primary else None, reason=reason)

    def _state(self) -> RolloutState:
        return self._state_of(self._entry(), self._json)

    @staticmethod
    def _state_of(entry: ModelEntry, state: _Json) -> RolloutState:
        canary = entry.labels.get(CANARY)
        return RolloutState(stable=entry.labels.get(STABLE), canary=canary,
                            canary_percent=state.canary_percent if canary is not None else 0.0,
                            shadow=state.shadow, history=state.history, updated_at=state.updated_at)

    def _versions_on_disk(self) -> Tuple[int, ...]:
        return tuple(sorted({int(v) for v in self._available()}))

    def _check_on_disk(self, version: Any, available: Sequence[int]) -> int:
        version = _as_version(version, "version")
        if version not in available:
            raise UnknownVersionError(
                "version", f"model '{self._model}' has no version {version} on disk "
                f"(on disk: {list(available)})")
        return version

    def _entry(self) -> ModelEntry:
        return self._entries[self._model]

    def _signature_now(self) -> Tuple[Any, Any]:
        return (_stat_signature(self._config_path), _stat_signature(self._state_path))

    def _reload(self) -> None:
        """Re-reads both files if either changed on disk since the last read."""
        signature = self._signature_now()
        if signature == self._signature:
            return
        entries: Dict[str, ModelEntry] = {}
        if signature[0] is not None:
            try:
                entries = models_config.read(self._config_path)
            except ModelsConfigError as error:
                raise RolloutError("models_config", str(error)) from None
        if self._model not in entries:
            if self._base_path is None:
                where = ("does not exist" if signature[0] is None
                         else f"has no model '{self._model}' (models: {sorted(entries)})")
                raise RolloutError(
                    "models_config", f"{self._config_path} {where}; expected it, or a base_path "
                    "to create the entry")
            entries[self._model] = ModelEntry(name=self._model, base_path=self._base_path)
        self._entries = entries
        if signature[1] is not None:
            self._json = _read_json(self._state_path, self._model)
        else:
            # No state file yet (e.g. a hand-written models.config): remember the
            # stable label in memory only, so merely routing never writes a file,
            # yet a later hand edit of the label is still noticed (and recorded).
            seen = self._json.stable_seen
            self._json = _Json(stable_seen=seen if seen is not None else entries[self._model].labels.get(STABLE))
        self._signature = signature

    def _ensure_stable(self) -> None:
        """Reloads; bootstraps or reconciles ``stable`` when needed (rarely: writes)."""
        self._reload()
        stable = self._entry().labels.get(STABLE)
        if stable is not None and stable == self._json.stable_seen:
            return
        with self._file_lock():
            self._signature = None
            self._reload()
            self._bootstrap(None)

    def _bootstrap(self, available: Optional[Tuple[int, ...]]) -> None:
        """Gives the model a stable label and notices external stable changes, on disk.

        See ``_reconciled``; caller holds both locks. Only a bootstrap pins the
        served versions (TF Serving must keep the labelled version loaded);
        noticing an external edit writes no models.config.
        """
        entry, state, bootstrap = self._reconciled(self._entry(), self._json, available)
        if entry is self._entry() and state is self._json:
            return
        self._commit(entry, state, available if available is not None else self._versions_on_disk(),
                     pin_versions=bootstrap)

    def _reconciled(self, entry: ModelEntry, state: _Json, available: Optional[Tuple[int, ...]]
                    ) -> Tuple[ModelEntry, _Json, bool]:
        """(entry, state, bootstrapped) with a stable label and the history up to date.

        No ``stable`` label yet: the newest version on disk becomes stable. A
        stable label that differs from the last one this module wrote (a hand
        edit, or a crash between the two file writes) is taken as a promote:
        the previous one goes onto the history, so rollback still works.
        Returns ``entry`` and ``state`` themselves when nothing changes.
        """
        stable = entry.labels.get(STABLE)
        if stable is not None and stable == state.stable_seen:
            return entry, state, False
        available = available if available is not None else self._versions_on_disk()
        bootstrap = stable is None
        if bootstrap:
            if not available:
                raise NoVersionsError(
                    "version", f"model '{self._model}' has no version on disk yet; expected at "
                    "least one pushed version")
            stable = max(available)
            entry = entry.with_label(STABLE, stable)
        if state.stable_seen is not None:
            history = state.history
            if not history or history[-1] != state.stable_seen:
                history = history + (state.stable_seen,)
            state = dataclasses.replace(state, history=history[-MAX_HISTORY:],
                                        shadow=None if state.shadow == stable else state.shadow)
        return entry, dataclasses.replace(state, stable_seen=stable), bootstrap

    def _commit(self, entry: ModelEntry, state: _Json, available: Tuple[int, ...],
                pin_versions: bool = True) -> None:
        """Writes models.config first (the atomic label switch), then the JSON state.

        models.config is written whole by ``models_config.write`` (temp +
        rename), so TF Serving and other readers see the old labels or the new
        ones, never a file without ``stable``.
        """
        if pin_versions:
            entry = _with_served_versions(entry, state, available)
        if entry != self._entries.get(self._model) or not os.path.exists(self._config_path):
            entries = dict(self._entries)
            entries[self._model] = entry
            try:
                models_config.write(self._config_path, list(entries.values()))
            except ModelsConfigError as error:
                raise RolloutError("models_config", str(error)) from None
            self._entries = entries
        if state != self._json or not os.path.exists(self._state_path):
            _write_json(self._state_path, self._model, state)
            self._json = state
        self._signature = self._signature_now()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """An exclusive ``flock``: the CLI and the gateway never interleave writes."""
        os.makedirs(os.path.dirname(self._lock_path), exist_ok=True)
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------ helpers

def versions_on_disk(base_path: str) -> List[int]:
    """The versions TF Serving would see under ``base_path``: its numeric subdirectories.

    For ``available_versions`` where no backend is at hand (the CLI):
    ``RolloutController(..., available_versions=lambda: versions_on_disk(base))``.
    Hidden staging directories of an in-progress push are not numeric, so
    they are not versions yet.
    """
    if not os.path.isdir(base_path):
        return []
    return sorted(int(name) for name in os.listdir(base_path)
                  if name.isdigit() and os.path.isdir(os.path.join(base_path, name)))


def _with_served_versions(entry: ModelEntry, state: _Json, available: Sequence[int]) -> ModelEntry:
    """The entry with exactly the versions TF Serving must load for this rollout.

    TF Serving answers a label only if its version is loaded, and with its
    default policy it loads only the newest version. So the controller owns
    the served set (``specific`` policy): stable, canary, shadow, and the
    previous stable when still on disk (kept loaded so a rollback is instant).
    Older versions are unloaded, which bounds TF Serving's memory.
    """
    wanted = set(entry.labels.values())
    if state.shadow is not None:
        wanted.add(state.shadow)
    if state.history and state.history[-1] in available:
        wanted.add(state.history[-1])
    versions = tuple(sorted(wanted))
    return entry if versions == tuple(entry.versions) else dataclasses.replace(entry, versions=versions)


def _as_version(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RolloutError(field, f"expected a positive integer version, got {value!r}")
    try:
        version = int(value)
    except ValueError:
        raise RolloutError(field, f"expected a positive integer version, got {value!r}") from None
    if version < 1:
        raise RolloutError(field, f"expected a positive integer version, got {value!r}")
    return version


def _as_percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RolloutError("percent", f"expected a number in [0, 100], got {value!r}")
    percent = float(value)
    if math.isnan(percent) or not 0.0 <= percent <= 100.0:
        raise RolloutError("percent", f"expected a number in [0, 100], got {value!r}")
    return percent


def _stat_signature(path: str) -> Optional[Tuple[int, int, int]]:
    """(inode, size, mtime_ns): rename-based writes change the inode even
    within one mtime tick, so an edit is never missed."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read_json(path: str, model: str) -> _Json:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as error:
        raise RolloutError("state", f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise RolloutError("state", f"{path}: not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise RolloutError("state", f"{path}: expected a JSON object")
    if raw.get("model", model) != model:
        raise RolloutError("state", f"{path}: holds the rollout of model {raw.get('model')!r}, "
                           f"expected {model!r}")
    try:
        shadow = raw.get("shadow")
        stable_seen = raw.get("stable")
        return _Json(
            canary_percent=_as_percent(raw.get("canary_percent", 0.0)),
            shadow=None if shadow is None else _as_version(shadow, "shadow"),
            history=tuple(_as_version(v, "history") for v in raw.get("history", [])),
            stable_seen=None if stable_seen is None else _as_version(stable_seen, "stable"),
            updated_at=float(raw.get("updated_at", 0.0)))
    except (RolloutError, TypeError, ValueError) as error:
        raise RolloutError("state", f"{path}: {error}") from None


def _write_json(path: str, model: str, state: _Json) -> None:
    """Temp file + rename: readers see the old state or the new one."""
    payload = {"format": _STATE_FORMAT, "model": model, "stable": state.stable_seen,
               "canary_percent": state.canary_percent, "shadow": state.shadow,
               "history": list(state.history), "updated_at": state.updated_at}
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rollout.", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
