"""One loaded SavedModel version: signatures, metadata and inference (no HTTP).

Inputs are built from each signature's ``structured_input_signature`` (name,
dtype, shape), so any SavedModel is served without per-model code. Calls go
through a ``BatchQueue`` per signature when batching is on.
"""
import dataclasses
import logging
import os
import threading
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from common.config import BatchingConfig
from serving import codec
from serving.batching import BatchQueue, Demand
from serving.claim_records import ClaimRecords
from serving.errors import BadRequest
from serving.signature_call import SignatureCall

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
EXAMPLE_SIGNATURE = "serving_tf_example"
_INTERNAL_SIGNATURES = ("__saved_model_init_op",)


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A parsed predict body: signature, input arrays, format and row count."""
    signature_name: str
    inputs: Dict[str, np.ndarray]
    row_format: bool
    rows: Optional[int]


def read_signature_defs(model_dir: str) -> Dict[str, Any]:
    """SignatureDef protos by name, read from ``saved_model.pb`` (for /metadata)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return {name: sig for name, sig in saved_model.meta_graphs[0].signature_def.items()
            if name not in _INTERNAL_SIGNATURES}


class ServedModel:
    """One model version, answering predict/classify/regress."""

    def __init__(self, name: str, version: int, path: str, loaded: Any,
                 signature_defs: Mapping[str, Any], batching: Optional[BatchingConfig] = None,
                 demand: Optional[Demand] = None, claim_records: Optional[ClaimRecords] = None) -> None:
        self.name = name
        self.version = int(version)
        self.path = path
        self._loaded = loaded
        self._signature_defs = dict(signature_defs)
        self._batching = batching if batching is not None and batching.enabled else None
        self._demand = demand or Demand()
        self._queues: Dict[str, BatchQueue] = {}
        self._queues_lock = threading.Lock()
        self._closed = False
        self._specs: Dict[str, Dict[str, codec.InputSpec]] = {}  # per signature, built once
        self._calls: Dict[str, SignatureCall] = {}  # per signature, built once
        # LIAR: makes a request's claim-neighbour record from the index pushed with the model
        self.claim_records = claim_records

    @classmethod
    def load(cls, path: str, name: str, version: int, batching: Optional[BatchingConfig] = None,
             demand: Optional[Demand] = None) -> "ServedModel":
        logger.info("Loading model %s version %s from %s", name, version, path)
        return cls(name, version, path, tf.saved_model.load(path), read_signature_defs(path),
                   batching, demand, ClaimRecords.for_version(path))

    # ---------------------------------------------------------------- signatures

    @property
    def signature_names(self) -> List[str]:
        return sorted(self._loaded.signatures.keys())

    def signature(self, signature_name: str) -> Any:
        """The signature's concrete function (the SavedModel's signature map is a
        plain dict lookup, so nothing is cached here); 400 naming the known ones."""
        try:
            return self._loaded.signatures[signature_name]
        except KeyError:
            raise BadRequest(f"signature_name '{signature_name}' not found; available: "
                             f"{self.signature_names}") from None

    def input_specs(self, signature_name: str) -> Dict[str, codec.InputSpec]:
        """Input name -> InputSpec of a signature (keyword inputs only), computed once."""
        specs = self._specs.get(signature_name)
        if specs is None:
            _, kwargs = self.signature(signature_name).structured_input_signature
            specs = {name: codec.InputSpec.of(name, spec) for name, spec in kwargs.items()}
            self._specs[signature_name] = specs
        return specs

    def metadata(self) -> Dict[str, Any]:
        """GET .../metadata, shaped like TF Serving's (SignatureDefMap as JSON)."""
        defs = {name: json_format.MessageToDict(sig, preserving_proto_field_name=True,
                                                including_default_value_fields=True)
                for name, sig in sorted(self._signature_defs.items())}
        return {"model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": defs}}}

    # ---------------------------------------------------------------- inference

    def parse_predict(self, body: Mapping[str, Any]) -> PredictRequest:
        """Validates a predict body against the chosen signature."""
        has_rows, has_columns = "instances" in body, "inputs" in body
        if has_rows == has_columns:
            raise BadRequest("Missing 'inputs' or 'instances' key" if not has_rows else
                             "Request body must have exactly one of 'instances' (row format) "
                             "or 'inputs' (columnar format), not both")
        signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature_name, str):
            raise BadRequest("'signature_name' must be a string")
        specs = self.input_specs(signature_name)
        names = list(specs)
        if has_rows:
            instances = body["instances"]
            if not isinstance(instances, list):
                raise BadRequest("'instances' must be a list")
            columns = codec.rows_to_columns(instances, names)
            arrays = {name: codec.to_array(name, columns[name], spec) for name, spec in specs.items()}
            return PredictRequest(signature_name, arrays, row_format=True, rows=len(instances))
        inputs = body["inputs"]
        if not isinstance(inputs, dict) or (len(names) == 1 and set(inputs) == {"b64"}):
            if len(names) != 1:
                raise BadRequest(f"'inputs' must be an object with keys {names}")
            inputs = {names[0]: inputs}
        codec.check_keys(inputs, names, where="'inputs'")
        arrays = {name: codec.to_array(name, inputs[name], spec) for name, spec in specs.items()}
        leading = {a.shape[0] if a.ndim else None for a in arrays.values()}
        rows = leading.pop() if len(leading) == 1 else None
        return PredictRequest(signature_name, arrays, row_format=False, rows=rows)

    def run(self, signature_name: str, inputs: Dict[str, np.ndarray],
            rows: Optional[int]) -> Dict[str, np.ndarray]:
        """Runs a signature, batched with concurrent calls when possible."""
        queue = self._queue(signature_name) if rows else None
        if queue is None:
            return self._call(signature_name, inputs)
        return queue.submit(inputs, rows)

    def _queue(self, signature_name: str) -> Optional[BatchQueue]:
        if self._batching is None or self._closed:
            return None
        with self._queues_lock:
            queue = self._queues.get(signature_name)
            if queue is None:
                queue = BatchQueue(lambda arrays: self._call(signature_name, arrays),
                                   self._batching, self._demand,
                                   name=f"{self.name}-{self.version}-{signature_name}")
                self._queues[signature_name] = queue
            return queue

    def signature_call(self, signature_name: str) -> SignatureCall:
        """The signature's caller (``serving.signature_call``: arrays in, tensors out), made
        once; it builds the input tensors on each call (per merged batch when batching)."""
        call = self._calls.get(signature_name)
        if call is None:
            call = SignatureCall(self.signature(signature_name), self.input_specs(signature_name))
            self._calls[signature_name] = call
        return call

    def _call(self, signature_name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        call = self.signature_call(signature_name)
        try:
            outputs = call(inputs)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            message = getattr(err, "message", str(err)).split("\n")[0]
            raise BadRequest(f"model rejected the inputs: {message}") from err
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def predict(self, body: Mapping[str, Any]) -> Dict[str, Any]:
        """{"predictions": ...} (row format) or {"outputs": ...} (columnar)."""
        request = self.parse_predict(body)
        outputs = self.run(request.signature_name, request.inputs, request.rows)
        if request.row_format:
            return {"predictions": codec.format_row_outputs(outputs, request.rows)}
        return {"outputs": codec.format_columnar_outputs(outputs)}

    def example_signature(self, requested: Optional[str]) -> str:
        """The signature classify/regress use: one string input of serialized tf.Examples.

        TF Serving requires a classify/regress SignatureDef; our exports put the
        tf.Example path under ``serving_tf_example``, so that is the default
        when ``serving_default`` takes raw features.
        """
        candidates = [requested] if requested else [DEFAULT_SIGNATURE, EXAMPLE_SIGNATURE]
        for name in candidates:
            if name not in self._loaded.signatures:
                continue
            specs = self.input_specs(name)
            if len(specs) == 1 and next(iter(specs.values())).dtype == tf.string:
                return name
        if requested:
            self.signature(requested)  # unknown name: the usual error
            raise BadRequest(f"signature_name '{requested}' does not take serialized tf.Examples "
                             f"(one string input); it takes {list(self.input_specs(requested))}")
        raise BadRequest(f"no signature takes serialized tf.Examples; tried {candidates}")

    def _run_examples(self, body: Mapping[str, Any], kinds: Mapping[str, str]) -> np.ndarray:
        signature_name = self.example_signature(body.get("signature_name"))
        serialized = codec.examples_to_protos(body.get("examples"), body.get("context"), kinds)
        name = next(iter(self.input_specs(signature_name)))
        outputs = self.run(signature_name, {name: np.asarray(serialized, dtype=object)},
                           len(serialized))
        return outputs

    def classify(self, body: Mapping[str, Any], kinds: Mapping[str, str]) -> Dict[str, Any]:
        """{"results": [[[label, score], ...], ...]}, TF Serving's classify shape.

        A real classification signature gives ``classes``/``scores``; a single
        probability output of shape [N, 1] is a binary classifier (labels "0"
        and "1"), [N, K] gives labels "0".."K-1".
        """
        outputs = self._run_examples(body, kinds)
        if "scores" in outputs:
            scores = np.asarray(outputs["scores"], dtype=np.float64)
            classes = outputs.get("classes")
            labels = (np.vectorize(lambda c: c.decode() if isinstance(c, bytes) else str(c),
                                   otypes=[object])(classes) if classes is not None else None)
        else:
            if len(outputs) != 1:
                raise BadRequest(f"cannot classify with outputs {sorted(outputs)}; expected "
                                 "'scores' (and 'classes') or a single probability output")
            probs = np.asarray(next(iter(outputs.values())), dtype=np.float64)
            probs = probs.reshape(probs.shape[0], -1)
            scores = np.concatenate([1.0 - probs, probs], axis=1) if probs.shape[1] == 1 else probs
            labels = None
        results = []
        for row in range(scores.shape[0]):
            names = (labels[row] if labels is not None else [str(i) for i in range(scores.shape[1])])
            results.append([[str(names[i]), float(str(np.float32(scores[row, i])))]
                            for i in range(scores.shape[1])])
        return {"results": results}

    def regress(self, body: Mapping[str, Any], kinds: Mapping[str, str]) -> Dict[str, Any]:
        """{"results": [value, ...]}: one number per example (TF Serving's regress shape)."""
        outputs = self._run_examples(body, kinds)
        output = outputs.get("outputs") if len(outputs) != 1 else next(iter(outputs.values()))
        if output is None:
            raise BadRequest(f"cannot regress with outputs {sorted(outputs)}; expected one output")
        values = np.asarray(output)
        if values.ndim > 2 or (values.ndim == 2 and values.shape[1] != 1):
            raise BadRequest(f"cannot regress: the output has shape {list(values.shape)}, "
                             "expected one value per example")
        return {"results": codec.to_json_value(values.reshape(-1).astype(np.float32))}

    def close(self) -> None:
        """Retires the version: batch workers stop; late callers run unbatched."""
        self._closed = True
        with self._queues_lock:
            for queue in self._queues.values():
                queue.close()
            self._queues.clear()

