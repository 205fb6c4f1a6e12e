"""Where predictions come from: the SavedModels in-process, or a real TF Serving.

Both backends answer the same questions for the gateway (which models,
versions and labels exist; status; metadata; inference on one resolved
version), so routing, validation, metrics, rollouts and the request log are
written once in ``serving.api``.

``InProcessBackend`` behaves like TF Serving's file-system source: it serves
the versions ``models.config`` asks for (the latest by default), polls the
model base paths for versions the Pusher adds (complete directories only:
``saved_model.pb`` present; the Pusher's ``.staging-*`` directories are not
numbers and are ignored) and polls ``models.config`` for label/policy
changes. A new version is loaded BEFORE the snapshot that routes to it is
swapped in, and a retired version keeps answering the requests that already
hold it, so a swap fails no request.

``ProxyBackend`` forwards to a TF Serving REST endpoint (production); labels
come from the same ``models.config`` that TF Serving reads.
"""
import dataclasses
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple

from common.config import BatchingConfig
from serving import models_config
from serving.batching import Demand
from serving.errors import BadRequest, NotFound, ServingError, Unavailable
from serving.servable import ServedModel, is_complete_version_dir

logger = logging.getLogger(__name__)

VERBS = ("predict", "classify", "regress")


def version_status(version: int, state: str = "AVAILABLE") -> Dict[str, Any]:
    return {"version": str(version), "state": state,
            "status": {"error_code": "OK", "error_message": ""}}


def scan_versions(base_path: str) -> List[int]:
    """Version numbers under a model base path whose directory is complete."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and int(n) > 0 and is_complete_version_dir(os.path.join(base_path, n)))


def _entry_base_path(entry: models_config.ModelEntry, config_path: Optional[str]) -> str:
    if os.path.isabs(entry.base_path) or config_path is None:
        return entry.base_path
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_path)), entry.base_path))


@dataclasses.dataclass(frozen=True)
class ModelState:
    """An immutable snapshot of one model: loaded versions and labels."""
    base_path: str
    versions: Mapping[int, ServedModel]
    labels: Mapping[str, int]


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
        self._failed: Dict[Tuple[str, int], str] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Loads what is configured, then keeps polling in the background."""
        self.reload()
        if not any(state.versions for state in self._state.values()):
            raise RuntimeError(f"no servable version found for {self._describe()}")
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
            new: Dict[str, ModelState] = {}
            for name, entry in entries.items():
                available = scan_versions(entry.base_path)
                wanted = set(entry.served_versions(available))
                wanted |= {v for v in entry.labels.values() if v in available}
                loaded = dict(old[name].versions) if name in old else {}
                versions: Dict[int, ServedModel] = {}
                for version in sorted(wanted):
                    if version in loaded:
                        versions[version] = loaded[version]
                        continue
                    if (name, version) in self._failed:
                        continue
                    path = os.path.join(entry.base_path, str(version))
                    try:
                        versions[version] = ServedModel.load(path, name, version, self._batching,
                                                             self.demand)
                    except Exception as err:  # pylint: disable=broad-except
                        logger.error("Cannot load %s version %d from %s: %s", name, version, path, err)
                        self._failed[(name, version)] = str(err)
                labels = {label: v for label, v in entry.labels.items() if v in versions}
                for label, v in entry.labels.items():
                    if v not in versions:
                        logger.warning("Label '%s' of model %s points to version %d, which is not "
                                       "loaded; ignoring the label", label, name, v)
                new[name] = ModelState(entry.base_path, versions, labels)
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
        """Complete versions on disk (served or not): rollouts may pick any."""
        return scan_versions(self._model(name).base_path)

    def labels(self, name: str) -> Dict[str, int]:
        return dict(self._model(name).labels)

    def servable(self, name: str, version: int) -> ServedModel:
        state = self._model(name)
        model = state.versions.get(version)
        if model is None:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return model

    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]:
        state = self._model(name)
        if version is not None:
            if version not in state.versions:
                raise NotFound(f"Could not find version {version} of model {name}")
            return {"model_version_status": [version_status(version)]}
        return {"model_version_status": [version_status(v) for v in sorted(state.versions, reverse=True)]}

    def metadata(self, name: str, version: int) -> Dict[str, Any]:
        return self.servable(name, version).metadata()

    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]:
        model = self.servable(name, version)
        if verb == "predict":
            return model.predict(body)
        if verb == "classify":
            return model.classify(body, kinds)
        return model.regress(body, kinds)


class ProxyBackend:
    """Forwards to a real TF Serving REST endpoint, e.g. http://tf-serving:8501."""

    def __init__(self, url: str, models_config_path: Optional[str] = None,
                 default_models: Tuple[str, ...] = (), timeout_s: float = 30.0) -> None:
        """``default_models``: the model names served when there is no models.config
        (TF Serving started with ``--model_name``)."""
        self._url = url.rstrip("/")
        self._config_path = models_config_path
        self._defaults = tuple(default_models)
        self._timeout_s = timeout_s
        self.demand = Demand()

    def start(self) -> None:
        """Fails fast when TF Serving is unreachable (a misconfigured URL)."""
        try:
            urllib.request.urlopen(self._url + "/v1/models/__probe__", timeout=self._timeout_s)
        except urllib.error.HTTPError:
            return  # any HTTP answer (404 for the probe) means it is there
        except (urllib.error.URLError, OSError) as err:
            raise RuntimeError(f"TF Serving is not reachable at {self._url}: {err}") from err

    def close(self) -> None:
        pass

    def reload(self) -> None:
        """Nothing to load here: TF Serving polls models.config itself."""

    def _call(self, path: str, body: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self._url + path, data=data,
                                         method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                message = json.loads(err.read()).get("error", "")
            except (ValueError, AttributeError):
                message = f"HTTP {err.code} from TF Serving"
            raise ServingError(message, status=err.code) from None
        except (urllib.error.URLError, OSError) as err:
            raise Unavailable(f"TF Serving at {self._url} did not answer: {err}") from None

    def _entry(self, name: str) -> Optional[models_config.ModelEntry]:
        if self._config_path and os.path.exists(self._config_path):
            return models_config.read(self._config_path).get(name)
        return None

    def model_names(self) -> List[str]:
        if self._config_path and os.path.exists(self._config_path):
            return sorted(models_config.read(self._config_path))
        return sorted(self._defaults)

    def versions(self, name: str) -> List[int]:
        status = self._call(f"/v1/models/{name}")
        return sorted(int(s["version"]) for s in status.get("model_version_status", [])
                      if s.get("state") == "AVAILABLE")

    def available_versions(self, name: str) -> List[int]:
        return self.versions(name)

    def labels(self, name: str) -> Dict[str, int]:
        entry = self._entry(name)
        return dict(entry.labels) if entry else {}

    def status(self, name: str, version: Optional[int]) -> Dict[str, Any]:
        return self._call(f"/v1/models/{name}" + (f"/versions/{version}" if version else ""))

    def metadata(self, name: str, version: int) -> Dict[str, Any]:
        return self._call(f"/v1/models/{name}/versions/{version}/metadata")

    def infer(self, name: str, version: int, verb: str, body: Mapping[str, Any],
              kinds: Mapping[str, str]) -> Dict[str, Any]:
        del kinds  # TF Serving types classify examples itself
        if verb not in VERBS:
            raise BadRequest(f"unknown verb {verb}")
        return self._call(f"/v1/models/{name}/versions/{version}:{verb}", body)
