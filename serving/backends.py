"""Where predictions come from: the SavedModels in-process, or a real TF Serving.

Both backends answer the same questions for the gateway (which models,
versions and labels exist; status; metadata; inference on one resolved
version), so routing, validation, metrics, rollouts and the request log are
written once in ``serving.api``.

``InProcessBackend`` behaves like TF Serving's file-system source: it serves
the versions ``models.config`` asks for (the latest by default), polls the
model base paths for versions the Pusher adds and polls ``models.config`` for
label/policy changes. A version is loaded only once its directory is complete
and settled (``serving.versions``: a copy in progress is not loaded). A new
version is loaded BEFORE the snapshot that routes to it is swapped in, and a
retired version keeps answering the requests that already hold it, so a swap
fails no request.

Availability comes first, as with TF Serving's availability-preserving
policy: a version that fails to load is reported in the model's status
(state ``END``, its error code and message) and the versions already loaded
keep serving -- under the latest-version policy, the newest version that
loads is served. A failed version is retried when its files change (fixed in
place), never in a loop. A version still settling is reported as ``START``.

``ProxyBackend`` forwards to a TF Serving REST endpoint (production); labels
come from the same ``models.config`` that TF Serving reads.
"""
import dataclasses
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple

from common.config import BatchingConfig
from serving import models_config
from serving import versions as version_dirs
from serving.batching import Demand
from serving.claim_records import ClaimRecords
from serving.errors import BadRequest, NotFound, ServingError, Unavailable
from serving.servable import ServedModel

logger = logging.getLogger(__name__)

VERBS = ("predict", "classify", "regress")


def version_status(version: int, state: str = "AVAILABLE", error_code: str = "OK",
                   error_message: str = "") -> Dict[str, Any]:
    """One entry of TF Serving's GetModelStatus answer."""
    return {"version": str(version), "state": state,
            "status": {"error_code": error_code, "error_message": error_message}}


scan_versions = version_dirs.complete_versions


def _entry_base_path(entry: models_config.ModelEntry, config_path: Optional[str]) -> str:
    if os.path.isabs(entry.base_path) or config_path is None:
        return entry.base_path
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_path)), entry.base_path))


@dataclasses.dataclass(frozen=True)
class ModelState:
    """An immutable snapshot of one model: loaded versions and labels, and the
    versions the policy wants that are not loaded (failed, or still settling)."""
    base_path: str
    versions: Mapping[int, ServedModel]
    labels: Mapping[str, int]
    failed: Mapping[int, version_dirs.LoadFailure] = dataclasses.field(default_factory=dict)
    settling: Tuple[int, ...] = ()


class InProcessBackend:
    """Serves SavedModels from model base paths, hot-swapping versions."""

    def __init__(self, default_models: Mapping[str, str], models_config_path: Optional[str] = None,
                 batching: Optional[BatchingConfig] = None, demand: Optional[Demand] = None,
                 poll_interval_s: float = 1.0) -> None:
        """``default_models``: name -> base path, used when ``models_config_path``
        does not exist (TF Serving's ``--model_name/--model_base_path``)."""
        self._defaults = dict(default_models)
        self._config_path = models_config_path
        self._batching = batching
        self.demand = demand or Demand()
        self._poll_interval_s = poll_interval_s
        self._state: Dict[str, ModelState] = {}
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._watch = version_dirs.VersionWatch(settle_s=poll_interval_s)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Loads what is configured (waiting for versions still settling), then keeps
        polling in the background."""
        self.reload()
        while (not any(state.versions for state in self._state.values())
               and any(state.settling for state in self._state.values())):
            time.sleep(self._poll_interval_s / 2)
            self.reload()
        if not any(state.versions for state in self._state.values()):
            failed = {f"{name} version {v}": f.message for name, state in self._state.items()
                      for v, f in state.failed.items()}
            raise RuntimeError(f"no servable version found for {self._describe()}"
                               + (f"; failed to load: {failed}" if failed else ""))
        self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        for state in self._state.values():
            for model in state.versions.values():
                model.close()

    def _describe(self) -> str:
        if self._config_path and os.path.exists(self._config_path):
            return f"models.config {self._config_path}"
        return ", ".join(f"model '{n}' under {p}" for n, p in self._defaults.items())

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            try:
                self.reload()
            except Exception:  # pylint: disable=broad-except
                logger.exception("Reloading models failed; still serving the previous versions")

    def _entries(self) -> Dict[str, models_config.ModelEntry]:
        if self._config_path and os.path.exists(self._config_path):
            entries = models_config.read(self._config_path)
            return {name: dataclasses.replace(e, base_path=_entry_base_path(e, self._config_path))
                    for name, e in entries.items()}
        return {name: models_config.ModelEntry(name=name, base_path=path)
                for name, path in self._defaults.items()}

    def reload(self) -> None:
        """One poll: load new versions, then swap the snapshot, then retire old ones."""
        with self._reload_lock:
            entries = self._entries()
            old = self._state
            new = {name: self._reload_model(entry, old.get(name)) for name, entry in entries.items()}
            self._watch.forget_except(
                os.path.join(state.base_path, str(v)) for state in new.values()
                for v in version_dirs.complete_versions(state.base_path) if v not in state.versions)
            self._state = new  # the swap: one reference assignment
            for name, state in old.items():
                kept = new[name].versions if name in new else {}
                for version, model in state.versions.items():
                    if kept.get(version) is not model:
                        logger.info("Retiring %s version %d", name, version)
                        model.close()
            for name, state in new.items():
                before = set(old[name].versions) if name in old else set()
                if set(state.versions) != before or (name in old and old[name].labels != state.labels):
                    logger.info("Model %s: serving versions %s, labels %s", name,
                                sorted(state.versions), dict(state.labels))

    def _reload_model(self, entry: models_config.ModelEntry, old: Optional[ModelState]) -> ModelState:
        """The next snapshot of one model: what its version policy wants and can load.

        Latest policy: the newest version that is loaded or loads, going down
        past versions that failed or are still settling (so the version
        serving now keeps serving). Specific policy (and label targets): each
        wanted version that is loaded or loads.
        """
        loaded = dict(old.versions) if old is not None else {}
        on_disk = version_dirs.complete_versions(entry.base_path)
        versions: Dict[int, ServedModel] = {}
        failed: Dict[int, version_dirs.LoadFailure] = {}
        settling: List[int] = []

        def serve(version: int) -> bool:
            if version in loaded:
                versions[version] = loaded[version]
                return True
            path = os.path.join(entry.base_path, str(version))
            state = self._watch.check(path)
            if state == version_dirs.SETTLING:
                settling.append(version)
                return False
            if state == version_dirs.READY:
                try:
                    versions[version] = ServedModel.load(path, entry.name, version, self._batching,
                                                         self.demand)
                    return True
                except Exception as err:  # pylint: disable=broad-except
                    failure = self._watch.record_failure(path, err)
                    logger.error("Cannot load %s version %d from %s (%s): %s; the versions "
                                 "already loaded keep serving, and it is retried when its files "
                                 "change", entry.name, version, path, failure.error_code,
                                 failure.message)
            failed[version] = self._watch.failure(path)
            return False

        if entry.versions:
            for version in on_disk:
                if version in entry.versions:
                    serve(version)
        else:
            for version in sorted(on_disk, reverse=True):
                if serve(version):
                    break
        for version in set(entry.labels.values()) & set(on_disk):
            if version not in versions and version not in failed and version not in settling:
                serve(version)
        for label, version in entry.labels.items():
            if version not in versions:
                logger.warning("Label '%s' of model %s points to version %d, which is not "
                               "loaded; ignoring the label", label, entry.name, version)
        labels = {label: v for label, v in entry.labels.items() if v in versions}
        return ModelState(entry.base_path, versions, labels,
                          {v: f for v, f in failed.items() if f is not None}, tuple(sorted(settling)))

    # ------------------------------------------------------------ queries

    def model_names(self) -> List[str]:
        return sorted(self._state)

    def _model(self, name: str) -> ModelState:
        state = self._state.get(name)
        if state is None:
            raise NotFound(f"Servable not found for request: Latest({name})")
        return state

    def versions(self, name: str) -> List[int]:
        return sorted(self._model(name).versions)

    def available_versions(self, name: str) -> List[int]:
        """Versions a rollout may pick: loaded, or complete, settled and not failed on disk."""
        state = self._model(name)
        return [v for v in version_dirs.complete_versions(state.base_path)
                if v in state.versions or self._watch.last_state(
                    os.path.join(state.base_path, str(v))) == version_dirs.READY]

    def labels(self, name: str) -> Dict[str, int]:
        return dict(self._model(name).labels)

    def servable(self, name: str, version: int) -> ServedModel:
        state = self._model(name)
        model = state.versions.get(version)
        if model is None:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return model

    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]:
        """TF Serving's GetModelStatus: AVAILABLE (loaded), END with the load error
        (failed), START (settling), newest first."""
        state = self._model(name)
        entries = {v: version_status(v) for v in state.versions}
        entries.update({v: version_status(v, "END", f.error_code, f.message)
                        for v, f in state.failed.items()})
        entries.update({v: version_status(v, "START") for v in state.settling})
        if version is not None:
            if version not in entries:
                raise NotFound(f"Could not find version {version} of model {name}")
            return {"model_version_status": [entries[version]]}
        return {"model_version_status": [entries[v] for v in sorted(entries, reverse=True)]}

    def metadata(self, name: str, version: int) -> Dict[str, Any]:
        return self.servable(name, version).metadata()

    def claim_records(self, name: str, version: int) -> Optional[ClaimRecords]:
        """The version's claim-neighbour record maker (loaded with the version), or None."""
        return self.servable(name, version).claim_records

    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]:
        model = self.servable(name, version)
        if verb == "predict":
            return model.predict(body)
        if verb == "classify":
            return model.classify(body, kinds)
        return model.regress(body, kinds)


class _ConnectionPool:
    """Keep-alive HTTP connections to one server, reused across requests (thread-safe).

    Why: a new TCP connection per forwarded request (urllib) costs a handshake
    and a slow-start on every call; TF Serving keeps HTTP/1.1 connections open.
    """

    def __init__(self, url: str, timeout_s: float, max_idle: int = 64) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--proxy_url: expected http(s)://host[:port], got {url!r}")
        self._connection_class = (http.client.HTTPSConnection if parsed.scheme == "https"
                                  else http.client.HTTPConnection)
        self._host, self._port = parsed.hostname, parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._timeout_s = timeout_s
        self._max_idle = max_idle
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (each one is reused while it lasts)

    def request(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        """(status, body). A reused connection the server has closed meanwhile is
        replaced once; any other failure raises ``OSError``/``HTTPException``."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        while True:
            connection, reused = self._take()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if reused:
                    continue  # an idle keep-alive connection the server closed: retry on a new one
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                self._give_back(connection)
            return response.status, data

    def _take(self) -> Tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
            self.opened += 1
        return self._connection_class(self._host, self._port, timeout=self._timeout_s), False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class ProxyBackend:
    """Forwards to a real TF Serving REST endpoint, e.g. http://tf-serving:8501.

    Per request the gateway asks which models, labels and versions exist:
    models.config is re-read only when its stat signature changes, and
    TF Serving's version list is cached for ``versions_ttl_s`` (and dropped on
    ``reload()``, which the rollout router calls when a route needs a version
    the cache does not have). Calls reuse pooled keep-alive connections.
    """

    def __init__(self, url: str, models_config_path: Optional[str] = None,
                 default_models: Tuple[str, ...] = (), timeout_s: float = 30.0,
                 versions_ttl_s: float = 1.0) -> None:
        """``default_models``: the model names served when there is no models.config
        (TF Serving started with ``--model_name``)."""
        self._url = url.rstrip("/")
        self._config_path = models_config_path
        self._defaults = tuple(default_models)
        self._timeout_s = timeout_s
        self._pool = _ConnectionPool(self._url, timeout_s)
        self._versions_ttl_s = versions_ttl_s
        self._versions: Dict[str, Tuple[float, List[int]]] = {}  # model -> (fetched at, versions)
        self._config: Tuple[Any, Optional[Dict[str, models_config.ModelEntry]]] = (None, None)
        self._lock = threading.Lock()
        self._claim_records: Dict[str, Optional[ClaimRecords]] = {}  # version directory -> maker
        self.demand = Demand()

    def start(self) -> None:
        """Fails fast when TF Serving is unreachable (a misconfigured URL)."""
        try:
            self._pool.request("GET", "/v1/models/__probe__", None)  # any HTTP answer will do
        except (http.client.HTTPException, OSError) as err:
            raise RuntimeError(f"TF Serving is not reachable at {self._url}: {err}") from err

    def close(self) -> None:
        self._pool.close()

    @property
    def connections_opened(self) -> int:
        """TCP connections opened to TF Serving so far (they are pooled and reused)."""
        return self._pool.opened

    def reload(self) -> None:
        """TF Serving polls models.config itself; forget the cached version lists."""
        with self._lock:
            self._versions.clear()

    def _call(self, path: str, body: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            status, payload = self._pool.request("GET" if data is None else "POST", path, data)
        except (http.client.HTTPException, OSError) as err:
            raise Unavailable(f"TF Serving at {self._url} did not answer: {err}") from None
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if status >= 400:
            message = answer.get("error", "") if isinstance(answer, dict) else ""
            raise ServingError(message or f"HTTP {status} from TF Serving", status=status)
        if not isinstance(answer, dict):
            raise ServingError(f"TF Serving at {self._url} answered {path} with no JSON object")
        return answer

    def _entries(self) -> Optional[Dict[str, models_config.ModelEntry]]:
        """models.config's entries (None without the file), re-read only when the file changed."""
        if not self._config_path:
            return None
        try:
            st = os.stat(self._config_path)
        except OSError:
            return None
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if signature == self._config[0]:
                return self._config[1]
        entries = models_config.read(self._config_path)
        with self._lock:
            self._config = (signature, entries)
        return entries

    def _entry(self, name: str) -> Optional[models_config.ModelEntry]:
        return (self._entries() or {}).get(name)

    def model_names(self) -> List[str]:
        entries = self._entries()
        return sorted(entries) if entries is not None else sorted(self._defaults)

    def versions(self, name: str) -> List[int]:
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(name)
        if cached is not None and now - cached[0] < self._versions_ttl_s:
            return list(cached[1])
        status = self._call(f"/v1/models/{name}")
        versions = sorted(int(s["version"]) for s in status.get("model_version_status", [])
                          if s.get("state") == "AVAILABLE")
        with self._lock:
            self._versions[name] = (now, versions)
        return list(versions)

    def available_versions(self, name: str) -> List[int]:
        return self.versions(name)

    def labels(self, name: str) -> Dict[str, int]:
        entry = self._entry(name)
        return dict(entry.labels) if entry else {}

    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]:
        return self._call(f"/v1/models/{name}" + (f"/versions/{version}" if version else ""))

    def metadata(self, name: str, version: int) -> Dict[str, Any]:
        return self._call(f"/v1/models/{name}/versions/{version}/metadata")

    def claim_records(self, name: str, version: int) -> Optional[ClaimRecords]:
        """The version's claim-neighbour record maker, read from the version directory
        models.config names when this host sees it (TF Serving's model volume mounted
        here too); None otherwise: rows are then forwarded as sent."""
        entry = self._entry(name)
        if entry is None:
            return None
        path = os.path.join(_entry_base_path(entry, self._config_path), str(version))
        with self._lock:
            if path in self._claim_records:
                return self._claim_records[path]
        records = ClaimRecords.for_version(path) if os.path.isdir(path) else None
        with self._lock:
            self._claim_records[path] = records
        return records

    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]:
        del kinds  # TF Serving types classify examples itself
        if verb not in VERBS:
            raise BadRequest(f"unknown verb {verb}")
        return self._call(f"/v1/models/{name}/versions/{version}:{verb}", body)
