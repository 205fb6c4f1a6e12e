"""Served rows -> serialized tf.Examples, a whole batch of requests at a time.

Why a column encoder: the request log writes every answered row, and the
per-row protobuf path (one ``tf.train.Example`` built field by field in
Python) cost ~0.2-0.6 ms per 15-feature row -- more than the model call of a
64-row request -- and ran under the GIL beside the request threads. Here the
rows of many requests become one Arrow ``RecordBatch`` (one typed column per
feature, checked with cheap per-column type tests) and tfx_bsl's C++
``RecordBatchToExamplesEncoder`` (the encoder TFX Transform uses for its
materialized examples) serializes them all in one call.

Encoding rules (what ``serving.request_log`` documents):

* a raw feature is typed by the dataset config: ``int`` -> int64_list
  (integral floats such as ``7.0`` accepted), ``float`` -> float_list,
  ``string`` -> bytes_list (UTF-8; TF Serving's ``{"b64": ...}`` decoded;
  numbers written as their text). A missing, ``None`` or empty value is an
  empty ``Feature`` (no list set), which TF's parsers, tfx_bsl and TFDV read
  as missing, as in Transform's output; ``serving.request_log.iter_window``
  drops such features when reading back.
* a row whose value does not fit its dtype (a string for an int, 2**70) is
  not written and is reported in ``Encoded.failures``; its neighbours are.
* ``drop`` features are never read; ``hash`` features become salted SHA-256
  hex digests (bytes_list).
* an output (a number, a list, or a dict of them per row) becomes int64s when
  all its values are integers, floats when all are numbers, bytes when all
  are strings, else its JSON text.
"""
from __future__ import annotations

import base64
import collections.abc
import dataclasses
import functools
import hashlib
import json
import numbers
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

DTYPES = ("int", "float", "string")
_ARROW = {"int": pa.int64(), "float": pa.float32(), "string": pa.binary()}
# numpy first for numbers: pyarrow 10 converts a flat list of Python floats to float32
# ~50x slower than numpy does.
_NUMPY = {"int": np.int64, "float": np.float32}
# Python types a column may hold for the vectorised path (bool is not an int here).
_FAST_TYPES = {"int": frozenset({int}), "float": frozenset({float, int}),
               "string": frozenset({str, bytes})}
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class RowError(ValueError):
    """One row cannot be encoded (a value does not fit its declared dtype)."""


@dataclasses.dataclass(frozen=True)
class Request:
    """The rows of one answered request and the metadata every row carries."""
    request_id: str
    model: str
    version: int
    role: str
    features: Sequence[Mapping[str, Any]]
    outputs: Sequence[Any]
    latency_ms: float
    timestamp: float


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Serialized tf.Examples, and the rows left out (request id, row, reason)."""
    examples: List[bytes]
    failures: List[Tuple[str, int, str]]


@dataclasses.dataclass(frozen=True)
class MetadataNames:
    """Feature names of the log's own columns (``serving.request_log`` owns them)."""
    request_id: str
    row: str
    model: str
    version: str
    role: str
    output: str
    latency_ms: str
    timestamp_ms: str


class ExampleEncoder:
    """Encodes requests' rows as tf.Examples (thread-compatible: one caller at a time)."""

    def __init__(self, feature_dtypes: Mapping[str, str], sensitive: Mapping[str, str],
                 salt: bytes, names: MetadataNames) -> None:
        self._columns = [(name, dtype, sensitive.get(name)) for name, dtype in feature_dtypes.items()
                         if sensitive.get(name) != "drop"]
        self._salt = salt
        self._names = names
        self._encoder = RecordBatchToExamplesEncoder()

    def encode(self, requests: Sequence[Request]) -> Encoded:
        """All rows of ``requests``, in order, minus the rows that cannot be encoded."""
        with np.errstate(over="ignore"):  # 1e39 -> inf in float32, as protobuf does
            return self._encode(requests)

    def _encode(self, requests: Sequence[Request]) -> Encoded:
        rows: List[Any] = []
        owners: List[Tuple[Request, int]] = []
        for request in requests:
            rows.extend(request.features)
            owners.extend((request, index) for index in range(len(request.features)))
        if not rows:
            return Encoded([], [])
        failures: Dict[int, str] = {}
        for index, row in enumerate(rows):
            if type(row) is not dict and not isinstance(row, collections.abc.Mapping):
                failures[index] = f"expected a mapping of feature -> value, got {type(row).__name__}"
        names, arrays = [], []
        for name, dtype, mode in self._columns:
            names.append(name)
            arrays.append(self._feature_column(name, dtype, mode, rows, failures))
        names += self._metadata_names()
        arrays += self._metadata_columns(requests)
        outputs = [output for request in requests for output in request.outputs]
        examples: List[bytes] = []
        for members, columns in _output_groups(outputs, failures, self._names.output):
            if len(members) == len(rows):
                selected = arrays
            else:
                indices = pa.array(members, pa.int64())
                selected = [array.take(indices) for array in arrays]
            batch = pa.RecordBatch.from_arrays(selected + list(columns.values()), names + list(columns))
            examples.extend(self._encoder.encode(batch))
        return Encoded(examples, [(owners[i][0].request_id, owners[i][1], message)
                                  for i, message in sorted(failures.items())])

    # ------------------------------------------------------------ columns

    def _feature_column(self, name: str, dtype: str, mode: Optional[str], rows: Sequence[Any],
                        failures: Dict[int, str]) -> pa.Array:
        """One raw feature as a list column; rows that do not fit go to ``failures``."""
        try:
            values = ([row.get(name) for row in rows] if not failures else
                      [row.get(name) if index not in failures else None for index, row in enumerate(rows)])
        except Exception:  # pylint: disable=broad-except  # a broken row object: find it row by row
            values = None
        if values is not None and mode is None:
            fast = _fast_column(values, dtype)
            if fast is not None:
                return fast
        cells: List[Optional[List[Any]]] = []
        for index, row in enumerate(rows):
            if index in failures:
                cells.append(None)
                continue
            try:
                typed = [_typed(v, dtype, name) for v in flatten(row.get(name))]
                if mode == "hash":
                    typed = [self._hash(name, v) for v in typed]
                cells.append(typed or None)
            except Exception as error:  # pylint: disable=broad-except  # one bad row loses only itself
                failures[index] = str(error)
                cells.append(None)
        return pa.array(cells, pa.list_(pa.binary() if mode == "hash" else _ARROW[dtype]))

    def _metadata_names(self) -> List[str]:
        n = self._names
        return [n.request_id, n.row, n.model, n.version, n.role, n.latency_ms, n.timestamp_ms]

    def _metadata_columns(self, requests: Sequence[Request]) -> List[pa.Array]:
        ids, rows, models, versions, roles, latencies, stamps = [], [], [], [], [], [], []
        for request in requests:
            count = len(request.features)
            ids += [request.request_id.encode("utf-8")] * count
            rows += range(count)
            models += [request.model.encode("utf-8")] * count
            versions += [request.version] * count
            roles += [request.role.encode("utf-8")] * count
            latencies += [request.latency_ms] * count
            stamps += [int(round(request.timestamp * 1000))] * count
        return [_scalar_column(ids, "string"), _scalar_column(rows, "int"),
                _scalar_column(models, "string"), _scalar_column(versions, "int"),
                _scalar_column(roles, "string"), _scalar_column(latencies, "float"),
                _scalar_column(stamps, "int")]

    def _hash(self, name: str, value: Any) -> bytes:
        """Salted SHA-256 hex: joinable across rows, not reversible without the salt."""
        raw = value if isinstance(value, bytes) else repr(value).encode("utf-8")
        digest = hashlib.sha256(self._salt + b"\0" + name.encode("utf-8") + b"\0" + raw)
        return digest.hexdigest().encode("ascii")


# ---------------------------------------------------------------- outputs

def _output_groups(outputs: Sequence[Any], failures: Mapping[int, str], column: str
                   ) -> List[Tuple[List[int], Dict[str, pa.Array]]]:
    """Rows grouped by the shape of their output (column names and list types), each
    group with its output columns: one Arrow column has one type, and outputs of
    different shapes (rare: a JSON fallback in some rows) cannot share it."""
    if not failures and _all_float_lists(outputs):  # one float list per row: the common case
        return [(list(range(len(outputs))), {column: pa.array(outputs, pa.list_(pa.float32()))})]
    groups: Dict[Tuple[Tuple[str, str], ...], Tuple[List[int], List[Dict[str, Tuple[str, List[Any]]]]]] = {}
    for index, output in enumerate(outputs):
        if index in failures:
            continue
        if type(output) is dict or isinstance(output, collections.abc.Mapping):
            cells = {f"{column}_{safe_name(str(key))}": _output_value(value) for key, value in output.items()}
        else:
            cells = {column: _output_value(output)}
        signature = tuple((name, kind) for name, (kind, _) in cells.items())
        members, rows = groups.setdefault(signature, ([], []))
        members.append(index)
        rows.append(cells)
    return [(members, {name: pa.array([cells[name][1] for cells in rows], pa.list_(_ARROW[kind]))
                       for name, kind in signature})
            for signature, (members, rows) in groups.items()]


def _all_float_lists(outputs: Sequence[Any]) -> bool:
    return all(type(output) is list for output in outputs) and all(
        type(value) is float for output in outputs for value in output)


def _output_value(value: Any) -> Tuple[str, List[Any]]:
    """(dtype, values) of one output: ints -> int, numbers -> float, strings -> string, else JSON."""
    if type(value) is list and all(type(v) is float for v in value):  # the common case, fast
        return "float", value
    values = flatten(value)
    if all(isinstance(v, (bool, numbers.Integral)) for v in values):
        if all(_INT64_MIN <= int(v) <= _INT64_MAX for v in values):
            return "int", [int(v) for v in values]
    elif all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return "float", [float(v) for v in values]
    elif all(isinstance(v, (str, bytes)) for v in values):
        return "string", [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    return "string", [json.dumps(value, default=str).encode("utf-8")]


# ---------------------------------------------------------------- values

def _scalar_column(values: List[Any], dtype: str) -> pa.Array:
    """One value per row as a list column (the tf.Example shape)."""
    if dtype in _NUMPY:
        array = pa.array(np.asarray(values, dtype=_NUMPY[dtype]))
    else:
        array = pa.array(values, _ARROW[dtype])
    return pa.ListArray.from_arrays(_offsets(len(values)), array)


@functools.lru_cache(maxsize=64)
def _offsets(rows: int) -> pa.Array:
    """List offsets 0..rows: one value per row (shared by every scalar column of a batch)."""
    return pa.array(np.arange(rows + 1, dtype=np.int32))


def _fast_column(values: List[Any], dtype: str) -> Optional[pa.Array]:
    """The column when every value is already of a plain JSON type that needs no
    conversion (the common case); None sends the column to the row-by-row path."""
    allowed = _FAST_TYPES[dtype]
    try:
        if set(map(type, values)) <= allowed:
            return _scalar_column(values, dtype)
        cells: List[Optional[List[Any]]] = []
        for value in values:
            kind = type(value)
            if kind in allowed:
                cells.append([value])
            elif value is None:
                cells.append(None)
            elif kind is list and all(type(v) in allowed for v in value):
                cells.append(value or None)
            else:
                return None
        return pa.array(cells, pa.list_(_ARROW[dtype]))
    except (pa.ArrowException, OverflowError, ValueError, TypeError):
        return None  # e.g. an int beyond int64, a lone surrogate: decided row by row


def flatten(value: Any) -> List[Any]:
    """A raw value as a flat list: scalar -> [scalar], None -> [], nested lists flattened."""
    if value is None:
        return []
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        flat: List[Any] = []
        for item in value:
            flat.extend(flatten(item))
        return flat
    return [value]


def _typed(value: Any, dtype: str, name: str) -> Any:
    """One value converted to its feature's dtype, or ``RowError`` naming the feature."""
    if dtype == "string":
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, Mapping) and set(value) == {"b64"}:  # TF Serving's binary encoding
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError):
                raise RowError(f"feature {name!r}: invalid base64 in {value!r}") from None
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return str(value).encode("utf-8")
        raise RowError(f"feature {name!r}: expected a string, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RowError(f"feature {name!r}: expected a {dtype}, got {value!r}")
    if dtype == "int":
        if not isinstance(value, numbers.Integral) and not float(value).is_integer():
            raise RowError(f"feature {name!r}: expected an int, got {value!r}")
        if not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise RowError(f"feature {name!r}: {value!r} does not fit in an int64")
        return int(value)
    return float(value)


def safe_name(text: str) -> str:
    """A file-name/feature-name safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "x"
