"""JSON <-> tensors, following TF Serving's REST encoding rules.

Pure functions (no model, no HTTP): row (``instances``) and columnar
(``inputs``) bodies to numpy arrays of a signature's dtypes, outputs back to
JSON (float32 printed by their shortest repr, bytes as UTF-8 or
``{"b64": ...}``), and the JSON examples of ``:classify``/``:regress`` to
serialized ``tf.Example`` protos.

These run on every request, so a signature's inputs are described once as
``InputSpec``s (plain numpy dtypes and shape tuples: TensorSpec's own
properties cost microseconds per access), and the common bodies -- rows that
are dicts of exactly the signature's inputs, columns of plain numbers or
strings -- take vectorised paths; anything else takes the general path with
the same errors.
"""
import base64
import dataclasses
import math
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import orjson
import tensorflow as tf

from serving.columns import same_keys, transpose
from serving.errors import BadRequest, ServingError, reject_unexpected


def decode_b64(value: Any) -> Any:
    """Replaces TF Serving's {"b64": "..."} binary wrappers by bytes."""
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise ValueError(f"unexpected object {value!r}; only {{'b64': '<base64>'}} "
                             "is allowed as a value")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as err:
            raise ValueError(f"invalid base64 in {value!r}") from err
    if isinstance(value, list):
        return [decode_b64(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One signature input, with what conversion needs precomputed."""
    name: str
    dtype: tf.DType
    numpy_dtype: Any          # None for strings (object arrays)
    kind: str                 # "string", "int" or "number"
    shape: Tuple[Optional[int], ...]
    rank_known: bool

    @classmethod
    def of(cls, name: str, spec: tf.TensorSpec) -> "InputSpec":
        dtype = spec.dtype
        kind = "string" if dtype == tf.string else ("int" if dtype.is_integer else "number")
        known = spec.shape.rank is not None
        return cls(name, dtype, None if kind == "string" else dtype.as_numpy_dtype, kind,
                   tuple(spec.shape.as_list()) if known else (), known)

    def fits(self, shape: Tuple[int, ...]) -> bool:
        """The array shape is compatible with the signature's."""
        return not self.rank_known or (
            len(shape) == len(self.shape)
            and all(want is None or want == got for want, got in zip(self.shape, shape)))

    def describe(self) -> Any:
        return list(self.shape) if self.rank_known else "?"


Spec = Union[InputSpec, tf.TensorSpec]


def to_array(name: str, values: Any, spec: Spec) -> np.ndarray:
    """JSON values of input ``name`` as a numpy array of the spec's dtype and shape.

    A value whose shape differs from the signature only by unit dimensions
    (a scalar per row for a ``[None, 1]`` input) is reshaped, which is what
    clients of Keras models usually send.
    """
    if not isinstance(spec, InputSpec):
        spec = InputSpec.of(name, spec)
    try:
        array = _strings(values) if spec.kind == "string" else _numbers(values, spec)
    except (TypeError, ValueError, OverflowError) as err:
        raise BadRequest(f"input '{name}': cannot convert to {spec.dtype.name}: {err}") from err
    if not spec.fits(array.shape):
        inner = spec.shape[1:]
        if (array.ndim >= 1 and spec.rank_known and None not in inner
                and array.size == array.shape[0] * math.prod(inner)):
            array = array.reshape((array.shape[0],) + inner)
        else:
            raise BadRequest(f"input '{name}' has shape {list(array.shape)}, the signature "
                             f"expects {spec.describe()}")
    return array


def _strings(values: Any) -> np.ndarray:
    if type(values) is list and set(map(type, values)) <= _PLAIN_STRINGS:
        array = np.empty(len(values), dtype=object)  # never a 2-D array of characters
        array[:] = values
        return array
    array = np.asarray(decode_b64(values), dtype=object)
    for item in array.ravel():
        if not isinstance(item, (str, bytes)):
            raise ValueError(f"{item!r} is not a string")
    return array


def _numbers(values: Any, spec: InputSpec) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"values of type {array.dtype} are not numbers")
    if spec.kind == "int" and array.dtype.kind == "f":
        if not np.all(np.mod(array, 1) == 0):
            raise ValueError("non-integral value for an integer input")
    return array.astype(spec.numpy_dtype, copy=False)


_PLAIN_STRINGS = frozenset({str, bytes})


def check_keys(given: Mapping[str, Any], expected: Sequence[str], where: str) -> None:
    """Missing and unexpected input names are errors naming each key."""
    missing = [name for name in expected if name not in given]
    if missing:
        raise BadRequest(f"{where}: missing input(s) {missing}; the signature expects "
                         f"{list(expected)}")
    reject_unexpected(given, expected, where, "input", "the signature expects")


def rows_to_columns(instances: Sequence[Any], input_names: Sequence[str]) -> Dict[str, List[Any]]:
    """Row-format instances as one list of values per input name.

    With a single-input signature an instance may be the bare value, as in
    TF Serving.
    """
    if not instances:
        raise BadRequest("'instances' must be a non-empty list")
    names = list(input_names)
    expected: FrozenSet[str] = frozenset(names)
    if names != ["b64"] and same_keys(instances, expected):
        return dict(zip(names, map(list, transpose(instances, names))))
    columns: Dict[str, List[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or (len(names) == 1 and set(instance) == {"b64"}):
            if len(names) != 1:
                raise BadRequest(f"instance {index} must be an object with keys {names}")
            instance = {names[0]: instance}
        check_keys(instance, names, where=f"instance {index}")
        for name in names:
            columns[name].append(instance[name])
    return columns


def to_json_value(array: np.ndarray) -> Any:
    """An output array as JSON-ready Python values (TF Serving's rendering)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        return _map_nested(array.tolist(), _string_to_json)
    if array.dtype == np.float32 and array.ndim and np.isfinite(array).all():
        # orjson writes each float32 by its shortest repr (as str() does, in C);
        # it writes NaN and infinities as null, so those take the path below.
        return orjson.loads(orjson.dumps(np.ascontiguousarray(array),
                                         option=orjson.OPT_SERIALIZE_NUMPY))
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


def format_row_outputs(outputs: Mapping[str, np.ndarray], batch_size: int) -> List[Any]:
    """Row-format "predictions": the bare per-row values for one output, else
    one object per row keyed by output name (TF Serving's rule)."""
    for name, array in outputs.items():
        if np.ndim(array) == 0 or np.shape(array)[0] != batch_size:
            raise ServingError(f"output '{name}' has shape {list(np.shape(array))}; row "
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
# :classify / :regress examples
# --------------------------------------------------------------------------

def _feature_values(name: str, value: Any, kind: Optional[str]) -> tf.train.Feature:
    """One JSON feature value (scalar or list) as a tf.train.Feature.

    TF Serving picks the list type from the JSON type (integer -> int64,
    number -> float, string -> bytes); ``kind`` ("int", "float", "bytes"), when
    the schema knows the feature, wins so that ``12`` is a valid float fare.
    """
    values = value if isinstance(value, list) else [value]
    try:
        values = decode_b64(values)
    except ValueError as err:
        raise BadRequest(f"example feature '{name}': {err}") from err
    feature = tf.train.Feature()
    if not values:
        return feature
    if kind is None:
        if all(isinstance(v, (str, bytes)) for v in values):
            kind = "bytes"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            kind = "int"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            kind = "float"
        else:
            raise BadRequest(f"example feature '{name}': expected numbers or strings "
                             f"(one type per feature), got {value!r}")
    try:
        if kind == "bytes":
            if not all(isinstance(v, (str, bytes)) for v in values):
                raise ValueError("expected strings")
            feature.bytes_list.value.extend(
                v.encode("utf-8") if isinstance(v, str) else v for v in values)
        elif kind == "int":
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and float(v).is_integer() for v in values):
                raise ValueError("expected integers")
            feature.int64_list.value.extend(int(v) for v in values)
        else:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError("expected numbers")
            feature.float_list.value.extend(float(v) for v in values)
    except (ValueError, OverflowError) as err:
        raise BadRequest(f"example feature '{name}': {err}, got {value!r}") from err
    return feature


def examples_to_protos(examples: Any, context: Any,
                       kinds: Mapping[str, str]) -> List[bytes]:
    """The ``examples`` (+ shared ``context``) of a classify/regress body,
    serialized as tf.Example protos."""
    if not isinstance(examples, list) or not examples:
        raise BadRequest("'examples' must be a non-empty list of objects")
    if context is not None and not isinstance(context, dict):
        raise BadRequest("'context' must be an object of features")
    serialized = []
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            raise BadRequest(f"example {index} must be an object of features")
        merged = dict(context or {})
        merged.update(example)
        proto = tf.train.Example()
        for name, value in merged.items():
            if value is None:
                continue
            proto.features.feature[name].CopyFrom(_feature_values(name, value, kinds.get(name)))
        serialized.append(proto.SerializeToString())
    return serialized


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
