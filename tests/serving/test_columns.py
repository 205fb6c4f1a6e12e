"""Rows to columns in C loops: the same columns as the comprehensions they replace."""
from serving.columns import same_keys, transpose


def test_transpose_gives_one_tuple_per_name_in_order():
    rows = [{"a": 1, "b": "x"}, {"b": "y", "a": 2}]
    assert transpose(rows, ["b", "a"]) == [("x", "y"), (1, 2)]
    assert transpose(rows, ["a"]) == [(1, 2)]
    assert transpose(rows, []) == []


def test_same_keys_needs_plain_dicts_with_exactly_the_keys():
    keys = frozenset({"a", "b"})
    assert same_keys([{"a": 1, "b": 2}, {"b": 3, "a": 4}], keys)
    assert same_keys([{"a": 1, "b": 2}], {"a": 1, "b": 2}.keys())
    assert not same_keys([{"a": 1, "b": 2}, {"a": 1}], keys)
    assert not same_keys([{"a": 1, "b": 2, "c": 3}], keys)
    assert not same_keys([{"a": 1, "b": 2}, [1, 2]], keys)

    class Row(dict):
        pass

    assert not same_keys([Row(a=1, b=2)], keys)
