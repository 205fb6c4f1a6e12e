"""serving.example_wire writes exactly the tf.Example protobuf would (checked against protobuf)."""
import math
import struct

import hypothesis
from hypothesis import strategies as st
from tensorflow.core.example import example_pb2

from serving import example_wire as wire

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
FLOATS = st.floats(width=32, allow_nan=False)
NAMES = st.text(min_size=1, max_size=20)
FEATURE = st.one_of(st.tuples(st.just("int"), st.lists(INT64, min_size=1, max_size=5)),
                    st.tuples(st.just("float"), st.lists(FLOATS, min_size=1, max_size=5)),
                    st.tuples(st.just("string"), st.lists(st.binary(max_size=300), min_size=1, max_size=5)))


def reference(features):
    example = example_pb2.Example()
    for name, (kind, values) in features.items():
        feature = example.features.feature[name]
        lists = {"int": feature.int64_list, "float": feature.float_list, "string": feature.bytes_list}
        lists[kind].value.extend(values)
    return example


def entry(name, kind, values):
    key = wire.Key(name)
    if kind == "int":
        return key.ints(values)
    if kind == "float":
        return key.floats(wire.pack_floats(values))
    return key.strings(values)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.dictionaries(NAMES, FEATURE, max_size=8))
def test_entries_parse_to_the_example_protobuf_builds(features):
    (serialized,) = wire.examples([[entry(name, kind, values) for name, (kind, values) in features.items()]])
    assert example_pb2.Example.FromString(serialized) == reference(features)


def test_columns_and_cached_scalars_match_single_entries():
    key = wire.Key("fare")
    assert key.float_column([1.5, 2, -0.0]) == [key.floats(wire.pack_floats([v])) for v in (1.5, 2.0, -0.0)]
    assert key.float_column([[1.0, 2.0], [3.0, 4.0]]) == [key.floats(wire.pack_floats(v)) for v in ([1, 2], [3, 4])]
    hours = wire.Key("hour")
    assert hours.scalar_column([3, None, 3, 300], hours.int_entry) == [
        hours.ints([3]), b"", hours.ints([3]), hours.ints([300])]
    assert wire.Key("s").string_entry("é") == wire.Key("s").strings(["é".encode()])


def test_float32_overflow_is_infinity_and_negative_ints_take_ten_bytes():
    assert struct.unpack("<2f", wire.pack_floats([1e39, -1e39])) == (math.inf, -math.inf)
    assert wire.varint(-1) == b"\xff" * 9 + b"\x01"
    assert wire.varint(300) == b"\xac\x02"
