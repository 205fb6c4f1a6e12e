"""The tf.Example protobuf wire format, written directly (no message objects).

Why: the request log serializes every answered row; building a
``tf.train.Example`` field by field costs tens of microseconds per row, and
so does a row in tfx_bsl's Arrow encoder plus its per-batch fixed cost. A
served row is a handful of scalar features whose serialized entries repeat
(the same company, hour, payment type), so entries are cached per value and
a float column is packed by numpy in one call.

The messages (tensorflow/core/example/{example,feature}.proto)::

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }   // entry { key = 1; value = 2; }
    Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                            Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

``example(entries)`` is the serialized Example of concatenated map entries.
A feature without values is left out (absent), as in the training data.
"""
import struct
from typing import Any, Callable, Dict, Iterable, List, Sequence

import numpy as np

_UINT64 = (1 << 64) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_SMALL = [bytes([n]) for n in range(128)]
_CACHE_LIMIT = 4096  # cached entries per feature before the cache starts over


def varint(value: int) -> bytes:
    """Base-128 varint of a uint64 (a negative int64 is written as its two's complement)."""
    if 0 <= value < 128:
        return _SMALL[value]
    value &= _UINT64
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def bytes_feature(values: Iterable[bytes]) -> bytes:
    return _field(b"\x0a", b"".join(_field(b"\x0a", v) for v in values))


def float_feature(packed: bytes) -> bytes:
    """``packed``: little-endian float32 values."""
    return _field(b"\x12", _field(b"\x0a", packed))


def int64_feature(values: Iterable[int]) -> bytes:
    return _field(b"\x1a", _field(b"\x0a", b"".join(varint(v) for v in values)))


def pack_floats(values: Sequence[float]) -> bytes:
    """float32 little-endian; out of range values become +-inf, as protobuf stores them."""
    try:
        return struct.pack(f"<{len(values)}f", *values)
    except (OverflowError, struct.error):
        with np.errstate(over="ignore"):
            return np.asarray(values, dtype="<f4").tobytes()


class Key:
    """One feature name: its map entries, cached per scalar value."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._key = _field(b"\x0a", name.encode("utf-8"))
        self._cache: Dict[object, bytes] = {}

    def entry(self, feature: bytes) -> bytes:
        """The map entry ``name -> feature`` (feature: serialized ``Feature``)."""
        return _field(b"\x0a", self._key + _field(b"\x12", feature))

    def floats(self, packed: bytes) -> bytes:
        return self.entry(float_feature(packed)) if packed else b""

    def ints(self, values: Sequence[int]) -> bytes:
        return self.entry(int64_feature(values)) if values else b""

    def strings(self, values: Sequence[bytes]) -> bytes:
        return self.entry(bytes_feature(values)) if values else b""

    def float_column(self, values: Sequence[Any]) -> List[bytes]:
        """One entry per row for a column of numbers, or of equally long lists of
        numbers, packed in one numpy call (every row's entry has the same length)."""
        with np.errstate(over="ignore"):
            array = np.asarray(values, dtype="<f4")
        width = 4 * (array.size // len(values)) if len(values) else 0
        data = array.tobytes()
        prefix = self.entry(float_feature(b"\0" * width))[:-width] if width else b""
        if not width:
            return [b""] * len(values)
        return [prefix + data[i:i + width] for i in range(0, len(data), width)]

    def int_entry(self, value: int) -> bytes:
        """The entry of one int64 (``OverflowError`` beyond the int64 range)."""
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise OverflowError(f"feature {self.name!r}: {value!r} does not fit in an int64")
        return self.ints([value])

    def string_entry(self, value: Any) -> bytes:
        """The entry of one string (str: UTF-8) or bytes value."""
        return self.strings([value.encode("utf-8") if type(value) is str else value])

    def scalar_column(self, values: Sequence[Any], build: Callable[[Any], bytes]) -> List[bytes]:
        """One entry per row for a column of ints or strings (None: missing), each
        distinct value's entry built once by ``build(value)`` and cached."""
        cache = self._cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        missing = object()
        entries = [cache.get(v, missing) for v in values]
        if missing in entries:
            for index, entry in enumerate(entries):
                if entry is missing:
                    value = values[index]
                    entries[index] = b"" if value is None else cache.setdefault(value, build(value))
        return entries


def examples(rows: Iterable[Sequence[bytes]]) -> List[bytes]:
    """Serialized Examples, one per row of map entries."""
    joined = [b"".join(entries) for entries in rows]
    return [b"\x0a" + varint(len(features)) + features if features else b"" for features in joined]
