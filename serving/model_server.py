"""A small model server speaking TF Serving's REST API for one SavedModel.

Why it exists: this machine has neither Docker nor a TF Serving binary, yet
infra validation, the e2e tests and clients need to exercise the real serving
path over HTTP. The server loads one SavedModel with ``tf.saved_model.load``
and answers the same URLs and JSON shapes as TF Serving, so a client written
against it works unchanged against TF Serving (and vice versa).

Supported (a later gateway grows this into the full API):

* ``GET  /v1/models/<name>[/versions/<v>]``            model status
* ``POST /v1/models/<name>[/versions/<v>]:predict``    row (``instances``) or
  columnar (``inputs``) request, optional ``signature_name``

The layers are kept apart so each can be reused and tested alone:
``ServedModel`` (TF, no HTTP) -> ``handle_request`` (routing, no sockets)
-> ``ModelServerHandler`` (HTTP) -> ``main`` (CLI, signals) and ``launch``
(start it as a child process and read its ``LISTENING <port>`` line).

Run: ``python -m serving.model_server --model_dir DIR --model_name NAME
--version 1 --port 0`` prints ``LISTENING <port>`` once it accepts requests.
"""
import argparse
import base64
import contextlib
import dataclasses
import http.server
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
LISTENING_PREFIX = "LISTENING"
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# /v1/models/<name>[/versions/<version>][:<verb>]
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+))?"
    r"(?::(?P<verb>[A-Za-z]+))?$")


class ServingError(Exception):
    """A request failed; carries the HTTP status sent back as {"error": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(ServingError):
    """The request body is malformed or does not fit the signature (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class NotFound(ServingError):
    """Unknown model, version or URL (404), as TF Serving says."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


# --------------------------------------------------------------------------
# JSON <-> tensors (pure functions, no model needed)
# --------------------------------------------------------------------------

def _decode_b64(value: Any) -> Any:
    """Replaces TF Serving's {"b64": "..."} binary wrappers by bytes."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ValueError(f"unexpected object {value!r}; only {{'b64': ...}} "
                             "is allowed as a value")
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def _to_array(name: str, values: Any, spec: tf.TensorSpec) -> np.ndarray:
    """Converts JSON values to a numpy array of the signature's dtype."""
    dtype = spec.dtype
    try:
        if dtype == tf.string:
            array = np.asarray(_decode_b64(values), dtype=object)
            for item in array.ravel():
                if not isinstance(item, (str, bytes)):
                    raise ValueError(f"{item!r} is not a string")
            return array
        array = np.asarray(values)
        if dtype.is_integer and array.dtype.kind == "f":
            if not np.all(np.mod(array, 1) == 0):
                raise ValueError("non-integral value for an integer input")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"values of type {array.dtype} are not numbers")
        return array.astype(dtype.as_numpy_dtype)
    except (TypeError, ValueError) as err:
        raise BadRequest(
            f"input '{name}': cannot convert to {dtype.name}: {err}") from err


def to_tensor(name: str, values: Any, spec: tf.TensorSpec) -> tf.Tensor:
    """Builds the input tensor ``name`` from JSON values, checked against spec.

    A value whose shape differs from the signature only by unit dimensions
    (a scalar per row for a ``[None, 1]`` input) is reshaped, which is what
    clients of Keras models usually send.
    """
    array = _to_array(name, values, spec)
    expected = spec.shape
    if not expected.is_compatible_with(array.shape):
        inner = expected[1:]
        if (array.ndim >= 1 and inner.is_fully_defined()
                and array.size == array.shape[0] * inner.num_elements()):
            array = array.reshape([array.shape[0]] + inner.as_list())
        else:
            raise BadRequest(
                f"input '{name}' has shape {list(array.shape)}, the signature "
                f"expects {expected.as_list()}")
    return tf.constant(array, dtype=spec.dtype)


def rows_to_columns(instances: Sequence[Any],
                    input_names: Sequence[str]) -> Dict[str, List[Any]]:
    """Turns row-format instances into one list of values per input name.

    With a single-input signature an instance may be the bare value, as in
    TF Serving. Missing and unexpected keys are errors naming the key.
    """
    if not instances:
        raise BadRequest("'instances' must be a non-empty list")
    names = list(input_names)
    columns: Dict[str, List[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            if len(names) != 1:
                raise BadRequest(
                    f"instance {index} must be an object with keys {names}")
            instance = {names[0]: instance}
        _check_keys(instance, names, where=f"instance {index}")
        for name in names:
            columns[name].append(instance[name])
    return columns


def _check_keys(given: Mapping[str, Any], expected: Sequence[str],
                where: str) -> None:
    missing = [name for name in expected if name not in given]
    if missing:
        raise BadRequest(f"{where}: missing input(s) {missing}; "
                         f"the signature expects {list(expected)}")
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        raise BadRequest(f"{where}: unexpected input(s) {unexpected}; "
                         f"the signature expects {list(expected)}")


def to_json_value(array: np.ndarray) -> Any:
    """Converts an output array to JSON-ready Python values.

    float32 values are rendered by their shortest repr (0.7, not
    0.699999988) like TF Serving; strings are UTF-8, else {"b64": ...}.
    NaN/inf stay floats, so json.dumps writes NaN/Infinity as TF Serving does.
    """
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        return _map_nested(array.tolist(), _string_to_json)
    if array.dtype in (np.float16, np.float32):
        shortest = [float(str(v)) for v in array.ravel()]
        return np.array(shortest, dtype=np.float64).reshape(array.shape).tolist()
    return array.tolist()


def _string_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _map_nested(value: Any, fn) -> Any:
    if isinstance(value, list):
        return [_map_nested(v, fn) for v in value]
    return fn(value)


def format_row_outputs(outputs: Mapping[str, np.ndarray],
                       batch_size: int) -> List[Any]:
    """Row-format "predictions": one entry per instance.

    A single-output signature gives the bare per-row values; several outputs
    give one object per row keyed by output name (TF Serving's rule).
    """
    for name, array in outputs.items():
        if np.ndim(array) == 0 or np.shape(array)[0] != batch_size:
            raise ServingError(
                500, f"output '{name}' has shape {list(np.shape(array))}; row "
                     f"format needs a batch dimension of {batch_size}")
    converted = {name: to_json_value(array) for name, array in outputs.items()}
    if len(converted) == 1:
        return next(iter(converted.values()))
    return [{name: values[row] for name, values in converted.items()}
            for row in range(batch_size)]


def format_columnar_outputs(outputs: Mapping[str, np.ndarray]) -> Any:
    """Columnar "outputs": the bare value for one output, else a dict."""
    converted = {name: to_json_value(array) for name, array in outputs.items()}
    if len(converted) == 1:
        return next(iter(converted.values()))
    return converted


# --------------------------------------------------------------------------
# The model (TF, no HTTP)
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A parsed predict body: which signature, which inputs, which format."""
    signature_name: str
    columns: Dict[str, Any]
    row_format: bool
    batch_size: Optional[int]


class ServedModel:
    """One loaded SavedModel version, answering predict requests.

    Inputs are built from each signature's ``structured_input_signature``
    (name, dtype, shape), so the server works for any model without
    per-model code.
    """

    def __init__(self, name: str, version: str, loaded: Any) -> None:
        self.name = name
        self.version = version
        self._loaded = loaded

    @classmethod
    def load(cls, model_dir: str, name: str, version: str) -> "ServedModel":
        """Loads ``model_dir`` (a SavedModel directory)."""
        logger.info("Loading model %s version %s from %s",
                    name, version, model_dir)
        return cls(name, version, tf.saved_model.load(model_dir))

    @property
    def signature_names(self) -> List[str]:
        return sorted(self._loaded.signatures.keys())

    def signature(self, signature_name: str) -> Any:
        try:
            return self._loaded.signatures[signature_name]
        except KeyError:
            raise BadRequest(
                f"signature_name '{signature_name}' not found; available: "
                f"{self.signature_names}") from None

    def input_specs(self, signature_name: str) -> Dict[str, tf.TensorSpec]:
        """Input name -> TensorSpec of a signature (keyword inputs only)."""
        _, kwargs = self.signature(signature_name).structured_input_signature
        return dict(kwargs)

    def status(self) -> Dict[str, Any]:
        """The body of GET /v1/models/<name>, shaped like TF Serving's."""
        return {"model_version_status": [{
            "version": self.version,
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }]}

    def check_servable(self, name: str, version: Optional[str]) -> None:
        """Raises NotFound unless the URL names this model (and version)."""
        if name != self.name:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if version is not None and version != self.version:
            raise NotFound(
                f"Servable not found for request: Specific({name}, {version})")

    def parse_predict(self, body: Any) -> PredictRequest:
        """Validates a predict body against the chosen signature."""
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        has_rows, has_columns = "instances" in body, "inputs" in body
        if has_rows == has_columns:
            raise BadRequest("request body must have exactly one of "
                             "'instances' (row format) or 'inputs' (columnar)")
        signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature_name, str):
            raise BadRequest("'signature_name' must be a string")
        names = list(self.input_specs(signature_name))
        if has_rows:
            instances = body["instances"]
            if not isinstance(instances, list):
                raise BadRequest("'instances' must be a list")
            return PredictRequest(signature_name,
                                  rows_to_columns(instances, names),
                                  row_format=True, batch_size=len(instances))
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            if len(names) != 1:
                raise BadRequest(f"'inputs' must be an object with keys {names}")
            inputs = {names[0]: inputs}
        _check_keys(inputs, names, where="'inputs'")
        return PredictRequest(signature_name, dict(inputs),
                              row_format=False, batch_size=None)

    def run(self, request: PredictRequest) -> Dict[str, np.ndarray]:
        """Runs the signature on the request's inputs."""
        specs = self.input_specs(request.signature_name)
        tensors = {name: to_tensor(name, request.columns[name], spec)
                   for name, spec in specs.items()}
        try:
            outputs = self.signature(request.signature_name)(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise BadRequest(f"model rejected the inputs: {err}") from err
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def predict(self, body: Any) -> Dict[str, Any]:
        """Answers a predict body with {"predictions"} or {"outputs"}."""
        request = self.parse_predict(body)
        outputs = self.run(request)
        if request.row_format:
            return {"predictions": format_row_outputs(outputs,
                                                      request.batch_size)}
        return {"outputs": format_columnar_outputs(outputs)}


# --------------------------------------------------------------------------
# Routing (no sockets) and HTTP
# --------------------------------------------------------------------------

def handle_request(model: ServedModel, method: str, path: str,
                   body: bytes) -> Tuple[int, Dict[str, Any]]:
    """Routes one request to the model; returns (HTTP status, JSON body)."""
    try:
        match = _MODEL_PATH.match(path.split("?", 1)[0])
        if not match:
            raise NotFound(f"unknown path {path}")
        name, version, verb = match.group("name", "version", "verb")
        model.check_servable(name, version)
        if method == "GET" and verb is None:
            return 200, model.status()
        if method == "POST" and verb == "predict":
            return 200, model.predict(_parse_json(body))
        raise NotFound(f"unsupported request {method} {path}")
    except ServingError as err:
        return err.status, {"error": err.message}
    except Exception as err:  # pylint: disable=broad-except
        logger.exception("Internal error on %s %s", method, path)
        return 500, {"error": f"internal error: {err}"}


def _parse_json(body: bytes) -> Any:
    if not body:
        raise BadRequest("empty request body; expected a JSON object")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequest(f"request body is not valid JSON: {err}") from err


class ModelServerHandler(http.server.BaseHTTPRequestHandler):
    """HTTP adapter: reads the body, calls handle_request, writes JSON."""

    server_version = "LocalModelServer/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._respond("POST")

    def _respond(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, payload = handle_request(self.server.model, method,
                                         self.path, body)
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s - %s", self.address_string(), format % args)


class ModelHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the model its handlers serve."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], model: ServedModel) -> None:
        super().__init__(address, ModelServerHandler)
        self.model = model

    @property
    def port(self) -> int:
        return self.server_address[1]


def _stop_on_signals(server: ModelHTTPServer) -> None:
    """SIGTERM/SIGINT stop serve_forever; shutdown() must run off the loop."""
    def _handler(signum: int, frame: Any) -> None:
        del frame
        logger.info("Got signal %d, shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve one SavedModel over TF Serving's REST API.",
        epilog="example: python -m serving.model_server --model_dir "
               "runs/serving/taxi/1 --model_name taxi --version 1 --port 8501")
    parser.add_argument("--model_dir", required=True,
                        help="SavedModel directory (contains saved_model.pb)")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--version", default="1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501,
                        help="0 picks a free port")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Loads the model, then serves until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        model = ServedModel.load(args.model_dir, args.model_name, args.version)
    except Exception as err:  # pylint: disable=broad-except
        logger.error("Cannot load model from %s: %s", args.model_dir, err)
        return 1
    server = ModelHTTPServer((args.host, args.port), model)
    _stop_on_signals(server)
    print(f"{LISTENING_PREFIX} {server.port}", flush=True)
    logger.info("Serving %s v%s on %s:%d", model.name, model.version,
                args.host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


# --------------------------------------------------------------------------
# Starting the server as a child process
# --------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    """The child server exited or stayed silent before printing LISTENING."""


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A started child server: where to reach it and its process."""
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def model_url(self, model_name: str) -> str:
        return f"{self.base_url}/v1/models/{model_name}"


@contextlib.contextmanager
def launch(model_dir: str, model_name: str, version: str = "1",
           startup_timeout_s: float = 120.0) -> Iterator[RunningServer]:
    """Starts ``python -m serving.model_server`` on a free port.

    Yields once the child printed ``LISTENING <port>`` (the model is loaded
    by then) and always terminates it on exit. The repo root is put on the
    child's PYTHONPATH so this works without installing the project.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "serving.model_server",
               "--model_dir", model_dir, "--model_name", model_name,
               "--version", str(version), "--port", "0"]
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True, env=env)
        try:
            port = _wait_for_listening(process, stderr, startup_timeout_s)
            yield RunningServer(port=port, process=process)
        finally:
            _terminate(process)


def _wait_for_listening(process: subprocess.Popen, stderr: Any,
                        timeout_s: float) -> int:
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def _read_stdout() -> None:
        try:
            for line in process.stdout:
                lines.put(line)
        except (OSError, ValueError):  # stdout closed by _terminate
            pass
        lines.put(None)

    threading.Thread(target=_read_stdout, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=min(0.5, max(deadline - time.monotonic(),
                                                   0.01)))
        except queue.Empty:
            continue
        if line is None:
            process.wait()
            raise ServerStartError(
                f"model server exited with code {process.returncode} before "
                f"listening: {_tail(stderr)}")
        if line.startswith(LISTENING_PREFIX + " "):
            return int(line.split()[1])
    raise ServerStartError(f"model server did not listen within {timeout_s:g}"
                           f" s: {_tail(stderr)}")


def _tail(stream: Any, limit: int = 2000) -> str:
    stream.flush()
    stream.seek(0)
    return stream.read()[-limit:].strip()


def _terminate(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout:
        process.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
