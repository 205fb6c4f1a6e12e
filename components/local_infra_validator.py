"""LocalInfraValidator: infra validation without Docker or Kubernetes.

Why a custom component: TFX's InfraValidator starts TF Serving through
Docker or Kubernetes, and this machine has neither (nor a TF Serving
binary). This component starts the serving gateway itself (``python -m
serving start``, TF Serving's REST API, the same code that serves in
production-like local use) on a free port, with request validation against
the curated schema, waits until the model is AVAILABLE, sends canary predict
requests built from the eval split, and checks status, shape, value range and
p95 latency. What is validated is what is served.

It writes exactly what TFX's InfraValidator writes (an empty
``INFRA_BLESSED`` / ``INFRA_NOT_BLESSED`` file and the int custom property
``blessed``), so TFX's Pusher reads the ``InfraBlessing`` unchanged. On
failure it also stores a short ``reason`` string property.

Configurations with ``serving.infra_validation: docker|kubernetes`` use
TFX's own InfraValidator instead; this one is for ``local``.

The logic lives in plain functions (``build_canary_requests``,
``check_responses``, ...) so it is testable without TFX.
"""
import base64
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from common.paths import resolve_path
from serving import server as gateway

logger = logging.getLogger(__name__)

# Spec keys: artifacts use TFX's own names, like InfraValidator.
MODEL_KEY = standard_component_specs.MODEL_KEY            # 'model'
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY      # 'examples'
BLESSING_KEY = standard_component_specs.BLESSING_KEY      # 'blessing'
MODEL_NAME_KEY = "model_name"
FEATURE_KEYS_JSON_KEY = "feature_keys_json"
NUM_REQUESTS_KEY = "num_requests"
LATENCY_BUDGET_MS_KEY = "latency_budget_ms"
SCHEMA_PATH_KEY = "schema_path"

# The InfraBlessing contract, as written by tfx/components/infra_validator.
BLESSED_KEY = "blessed"
BLESSED_FILENAME = "INFRA_BLESSED"
NOT_BLESSED_FILENAME = "INFRA_NOT_BLESSED"
REASON_KEY = "reason"

EVAL_SPLIT = "eval"
FEATURE_DTYPES = ("float", "int", "string")
SERVED_VERSION = "1"
STARTUP_TIMEOUT_S = 180.0
AVAILABLE_TIMEOUT_S = 60.0
_MAX_REASON_CHARS = 1000
_MAX_LOGGED_FAILURES = 20


# --------------------------------------------------------------------------
# Canary requests from tf.Examples
# --------------------------------------------------------------------------

def parse_feature_keys(feature_keys_json: str) -> Dict[str, str]:
    """Parses and checks {"feature": "float"|"int"|"string"} JSON.

    A wrong value is a pipeline bug, so it raises instead of "not blessed".
    """
    try:
        feature_keys = json.loads(feature_keys_json)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{FEATURE_KEYS_JSON_KEY} is not valid JSON: {err}"
                         ) from err
    if not isinstance(feature_keys, dict) or not feature_keys:
        raise ValueError(f"{FEATURE_KEYS_JSON_KEY} must be a non-empty JSON "
                         f"object name -> dtype, got {feature_keys_json!r}")
    wrong = {name: dtype for name, dtype in feature_keys.items()
             if dtype not in FEATURE_DTYPES}
    if wrong:
        raise ValueError(f"{FEATURE_KEYS_JSON_KEY}: unknown dtype(s) {wrong}; "
                         f"expected one of {list(FEATURE_DTYPES)}")
    return dict(feature_keys)


def eval_example_files(examples: types.Artifact,
                       split: str = EVAL_SPLIT) -> List[str]:
    """Files of the eval split of an Examples artifact (Split-eval/*)."""
    split_uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(fileio.glob(os.path.join(split_uri, "*")))
    if not files:
        raise ValueError(f"no example files under {split_uri}")
    return files


def read_examples(files: Sequence[str]) -> Iterator[tf.train.Example]:
    """Yields tf.Examples from TFRecord files (gzipped when named *.gz)."""
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path,
                                              compression_type=compression):
            yield tf.train.Example.FromString(record.numpy())


def _convert(name: str, dtype: str, value: Any) -> Any:
    """Converts one tf.Example value to the declared JSON type."""
    try:
        if dtype == "string":
            if isinstance(value, bytes):
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(value).decode("ascii")}
            return str(value)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if dtype == "float":
            return float(value)
        number = float(value)
        if not number.is_integer():
            raise ValueError("not an integer")
        return int(number)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"feature '{name}' is declared {dtype} but holds "
                         f"{value!r}: {err}") from err


def example_to_instance(example: tf.train.Example,
                        feature_keys: Mapping[str, str],
                        allow_missing: bool = False
                        ) -> Optional[Dict[str, Any]]:
    """One row-format instance from a tf.Example, or None.

    None if a feature is multi-valued (the row-format signature takes one value
    per feature), or missing or empty unless ``allow_missing``, in which case it is
    left out of the instance, as a client leaves out an optional feature (the
    gateway fills what the schema makes optional and refuses a missing required
    feature with a 400 naming it, which fails the validation honestly).
    """
    instance: Dict[str, Any] = {}
    features = example.features.feature
    for name, dtype in feature_keys.items():
        kind = features[name].WhichOneof("kind") if name in features else None
        values = list(getattr(features[name], kind).value) if kind else []
        if not values and allow_missing:
            continue
        if len(values) != 1:
            return None
        instance[name] = _convert(name, dtype, values[0])
    return instance


def build_canary_requests(examples: Iterable[tf.train.Example],
                          feature_keys: Mapping[str, str],
                          num_requests: int) -> List[Dict[str, Any]]:
    """``num_requests`` predict bodies, one instance each, from examples.

    Complete examples are preferred. Why partial ones at all: an eval split can
    lack a feature in every row (retraining on served traffic whose log drops a
    sensitive, optional feature), and such rows are what clients send; then the
    examples are sent with their missing features left out. When fewer usable
    examples exist than requests, they are reused in turn so the latency figure
    still rests on ``num_requests`` samples.
    """
    if num_requests < 1:
        raise ValueError(f"{NUM_REQUESTS_KEY} must be >= 1, got {num_requests}")
    complete: List[Dict[str, Any]] = []
    partial: List[Dict[str, Any]] = []
    skipped = 0
    for example in examples:
        instance = example_to_instance(example, feature_keys, allow_missing=True)
        if instance is not None and len(instance) == len(feature_keys):  # no feature missing
            complete.append(instance)
            if len(complete) == num_requests:
                break
            continue
        skipped += 1
        if instance and len(partial) < num_requests:
            partial.append(instance)
    instances = complete or partial
    if skipped and complete:
        logger.info("Skipped %d eval example(s) missing one of %s",
                    skipped, sorted(feature_keys))
    if not instances:
        raise ValueError(f"no eval example has any of the features "
                         f"{sorted(feature_keys)}; check {FEATURE_KEYS_JSON_KEY}")
    if not complete:
        missing = sorted(set(feature_keys) - set().union(*(set(i) for i in instances)))
        logger.info("No eval example has all features; sending %d with the missing ones "
                    "left out (absent from every one: %s)", len(instances), missing)
    if len(instances) < num_requests:
        logger.info("Only %d usable eval example(s); reusing them for %d "
                    "requests", len(instances), num_requests)
    return [{"instances": [instances[i % len(instances)]]}
            for i in range(num_requests)]


# --------------------------------------------------------------------------
# Talking to the server
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CanaryResponse:
    """One predict answer: HTTP status (0: no answer), JSON body, latency."""
    status: int
    body: Any
    latency_ms: float


def _http(url: str, body: Optional[Dict[str, Any]],
          timeout_s: float) -> CanaryResponse:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        elapsed = (time.perf_counter() - start) * 1000.0
        return CanaryResponse(0, {"error": f"no answer: {err}"}, elapsed)
    elapsed = (time.perf_counter() - start) * 1000.0
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = raw.decode("utf-8", "replace")
    return CanaryResponse(status, parsed, elapsed)


def wait_until_available(status_url: str, timeout_s: float) -> None:
    """Polls TF Serving's status endpoint until a version is AVAILABLE."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        response = _http(status_url, None, timeout_s=5.0)
        last = response.body
        if response.status == 200 and isinstance(last, dict):
            states = [v.get("state") for v in
                      last.get("model_version_status", [])]
            if "AVAILABLE" in states:
                return
        time.sleep(0.2)
    raise TimeoutError(f"model not AVAILABLE within {timeout_s:g} s at "
                       f"{status_url}; last status: {last}")


def send_canary_requests(predict_url: str,
                         requests: Sequence[Dict[str, Any]],
                         latency_budget_ms: float) -> List[CanaryResponse]:
    """Sends the requests one by one (so latencies are not contended)."""
    timeout_s = max(10.0, 10 * latency_budget_ms / 1000.0)
    return [_http(predict_url, body, timeout_s) for body in requests]


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a latency that was observed."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _leaves(value: Any) -> Iterator[Any]:
    """All scalar values in a prediction (nested lists / multi-output dicts)."""
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _check_prediction_values(predictions: List[Any]) -> Optional[str]:
    for value in _leaves(predictions):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"non-numeric prediction {value!r}"
        if not math.isfinite(value):
            return f"prediction {value} is not finite"
        if not 0.0 <= value <= 1.0:
            return f"prediction {value} is outside [0, 1]"
    return None


def check_response(request: Mapping[str, Any],
                   response: CanaryResponse) -> Optional[str]:
    """What is wrong with one answer (None when it is fine)."""
    if response.status != 200:
        error = (response.body.get("error", response.body)
                 if isinstance(response.body, dict) else response.body)
        return f"HTTP {response.status}: {error}"
    predictions = (response.body.get("predictions")
                   if isinstance(response.body, dict) else None)
    if not isinstance(predictions, list):
        return "response has no 'predictions' list"
    expected = len(request["instances"])
    if len(predictions) != expected:
        return f"expected {expected} prediction(s), got {len(predictions)}"
    return _check_prediction_values(predictions)


def check_responses(requests: Sequence[Mapping[str, Any]],
                    responses: Sequence[CanaryResponse],
                    latency_budget_ms: float) -> List[str]:
    """All failure reasons of a canary run; an empty list means blessed.

    Checks: HTTP 200, one prediction per instance, every value a finite
    probability in [0, 1], and the p95 latency within the budget.
    """
    if not responses:
        return ["no canary responses"]
    failures = []
    if len(responses) != len(requests):
        failures.append(f"sent {len(requests)} requests, got "
                        f"{len(responses)} responses")
    for index, (request, response) in enumerate(zip(requests, responses)):
        problem = check_response(request, response)
        if problem:
            failures.append(f"request {index}: {problem}")
    p95 = percentile([r.latency_ms for r in responses], 95)
    if p95 > latency_budget_ms:
        failures.append(f"p95 latency {p95:.1f} ms exceeds the budget of "
                        f"{latency_budget_ms:g} ms")
    return failures


def summarize(failures: Sequence[str], limit: int = 3) -> str:
    """A short reason string for the artifact: first failures + a count."""
    head = "; ".join(failures[:limit])
    if len(failures) > limit:
        head += f" (+{len(failures) - limit} more)"
    return head[:_MAX_REASON_CHARS]


@contextlib.contextmanager
def model_base_path(model_dir: str) -> Iterator[str]:
    """A temporary TF Serving model base path holding ``model_dir`` as version 1.

    The Trainer's SavedModel is not in the versioned layout the gateway
    serves; a symlink puts it there without copying.
    """
    with tempfile.TemporaryDirectory(prefix="infra-validation-") as base:
        os.symlink(os.path.abspath(model_dir), os.path.join(base, SERVED_VERSION))
        yield base


def validate_serving(model_dir: str, model_name: str,
                     requests: Sequence[Dict[str, Any]],
                     latency_budget_ms: float,
                     schema_path: str = "") -> List[str]:
    """Starts the serving gateway, runs the canary, returns failure reasons.

    Requests are validated against ``schema_path`` (the curated schema's
    SERVING environment) when given, as in serving. Start-up problems are
    failures (not exceptions): a model that cannot be served must not be
    blessed. The gateway is always stopped.
    """
    extra = ["--schema", schema_path] if schema_path else []
    try:
        with model_base_path(model_dir) as base, gateway.launch_model(
                base, model_name, "--no_request_log", *extra,
                startup_timeout_s=STARTUP_TIMEOUT_S) as server:
            url = server.model_url(model_name)
            wait_until_available(url, AVAILABLE_TIMEOUT_S)
            responses = send_canary_requests(f"{url}:predict", requests,
                                             latency_budget_ms)
    except (gateway.ServerStartError, TimeoutError) as err:
        return [f"serving gateway not ready: {err}"]
    latencies = [r.latency_ms for r in responses]
    logger.info("Canary: %d requests, p50 %.1f ms, p95 %.1f ms",
                len(responses), percentile(latencies, 50),
                percentile(latencies, 95))
    return check_responses(requests, responses, latency_budget_ms)


# --------------------------------------------------------------------------
# The InfraBlessing artifact
# --------------------------------------------------------------------------

def mark_blessed(blessing: types.Artifact) -> None:
    """Writes INFRA_BLESSED and blessed=1, as TFX's InfraValidator does."""
    io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILENAME), "")
    blessing.set_int_custom_property(BLESSED_KEY, 1)
    logger.info("Model passed infra validation.")


def mark_not_blessed(blessing: types.Artifact,
                     failures: Sequence[str]) -> None:
    """Writes INFRA_NOT_BLESSED, blessed=0 and a short 'reason'."""
    io_utils.write_string_file(
        os.path.join(blessing.uri, NOT_BLESSED_FILENAME), "")
    blessing.set_int_custom_property(BLESSED_KEY, 0)
    blessing.set_string_custom_property(REASON_KEY, summarize(failures))
    logger.warning("Model failed infra validation (%d problem(s)):",
                   len(failures))
    for failure in failures[:_MAX_LOGGED_FAILURES]:
        logger.warning("  - %s", failure)
    if len(failures) > _MAX_LOGGED_FAILURES:
        logger.warning("  ... and %d more",
                       len(failures) - _MAX_LOGGED_FAILURES)


# --------------------------------------------------------------------------
# TFX component
# --------------------------------------------------------------------------

class GracefulShutdown(Exception):
    """SIGTERM turned into an exception so the server child gets stopped."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Makes SIGTERM unwind (and so stop the child server) when possible.

    Signal handlers can only be installed on the main thread; elsewhere
    (e.g. Beam worker threads) this is a no-op, as in TFX's InfraValidator.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum: int, frame: Any) -> None:
        del frame
        raise GracefulShutdown(f"got signal {signum}")

    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Executor(base_executor.BaseExecutor):
    """Serves the model locally, sends canary requests, writes the blessing."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Blesses the model iff every canary check passes.

        Misconfiguration (bad feature JSON, no usable eval examples) raises:
        it is a pipeline bug, not a property of the model.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])

        model_name = str(exec_properties[MODEL_NAME_KEY])
        budget_ms = float(exec_properties[LATENCY_BUDGET_MS_KEY])
        if budget_ms <= 0:
            raise ValueError(f"{LATENCY_BUDGET_MS_KEY} must be > 0")
        requests = build_canary_requests(
            read_examples(eval_example_files(examples)),
            parse_feature_keys(exec_properties[FEATURE_KEYS_JSON_KEY]),
            int(exec_properties[NUM_REQUESTS_KEY]))
        model_dir = path_utils.serving_model_path(
            model.uri, path_utils.is_old_model_artifact(model))

        with _sigterm_raises():
            schema = str(exec_properties.get(SCHEMA_PATH_KEY) or "")
            failures = validate_serving(model_dir, model_name, requests,
                                        budget_ms,
                                        resolve_path(schema) if schema else "")
        if failures:
            mark_not_blessed(blessing, failures)
        else:
            mark_blessed(blessing)


class LocalInfraValidatorSpec(types.ComponentSpec):
    """Inputs, parameters and output of LocalInfraValidator."""

    PARAMETERS = {
        MODEL_NAME_KEY: ExecutionParameter(type=str),
        FEATURE_KEYS_JSON_KEY: ExecutionParameter(type=str),
        NUM_REQUESTS_KEY: ExecutionParameter(type=int),
        LATENCY_BUDGET_MS_KEY: ExecutionParameter(type=float),
        SCHEMA_PATH_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing),
    }


class LocalInfraValidator(base_component.BaseComponent):
    """Infra validation on the real serving path, without Docker/Kubernetes.

    Custom because TFX's InfraValidator needs Docker or Kubernetes to start
    TF Serving, which this machine lacks. ``infra_validation: docker`` or
    ``kubernetes`` in the dataset config selects TFX's own InfraValidator;
    ``local`` selects this one. Both output a standard ``InfraBlessing``
    that TFX's Pusher reads unchanged.
    """

    SPEC_CLASS = LocalInfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel,
                 model_name: str, feature_keys_json: str,
                 num_requests: int = 20,
                 latency_budget_ms: float = 500.0,
                 schema_path: str = "") -> None:
        """``feature_keys_json``: JSON object mapping each raw serving feature
        to "float", "int" or "string"; checked here so a typo fails when the
        pipeline is built, not after training. ``schema_path`` (the config's
        ``schema``, repo-relative): requests are validated against it, as the
        gateway does in serving."""
        parse_feature_keys(feature_keys_json)
        spec = LocalInfraValidatorSpec(**{
            MODEL_KEY: model,
            EXAMPLES_KEY: examples,
            BLESSING_KEY: types.Channel(type=standard_artifacts.InfraBlessing),
            MODEL_NAME_KEY: model_name,
            FEATURE_KEYS_JSON_KEY: feature_keys_json,
            NUM_REQUESTS_KEY: int(num_requests),
            LATENCY_BUDGET_MS_KEY: float(latency_budget_ms),
            SCHEMA_PATH_KEY: schema_path,
        })
        super().__init__(spec=spec)
