"""SignatureCall: the flat call answers exactly as TF's public keyword call, and
anything it cannot vouch for goes through the public call (no server)."""
import numpy as np
import pytest
import tensorflow as tf

from serving import codec
from serving.signature_call import SignatureCall
from testing.tiny_model import INSTANCE, save_tiny_model

ROWS = [dict(INSTANCE, fare=float(i), payment_type=("Cash", "Credit Card")[i % 2]) for i in range(5)]


@pytest.fixture(scope="module")
def model(tmp_path_factory, taxi_config):
    path = save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "1"), taxi_config, 0.25)
    return tf.saved_model.load(path)


def _specs(function):
    return {name: codec.InputSpec.of(name, spec)
            for name, spec in function.structured_input_signature[1].items()}


def _arrays(specs, rows):
    columns = codec.rows_to_columns(rows, list(specs))
    return {name: codec.to_array(name, columns[name], spec) for name, spec in specs.items()}


def _public(function, specs, arrays):
    return function(**{name: tf.constant(arrays[name], dtype=spec.dtype) for name, spec in specs.items()})


def _numpy(outputs):
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def test_the_flat_call_answers_as_the_keyword_call(model):
    function = model.signatures["serving_default"]
    specs = _specs(function)
    call = SignatureCall(function, specs)
    assert call.flat
    arrays = _arrays(specs, ROWS)
    flat, public = _numpy(call(arrays)), _numpy(_public(function, specs, arrays))
    assert flat.keys() == public.keys() == {"outputs"}
    np.testing.assert_array_equal(flat["outputs"], public["outputs"])
    assert flat["outputs"].shape == (len(ROWS), 1)


def test_the_example_signature_takes_the_flat_call_too(model):
    function = model.signatures["serving_tf_example"]
    specs = _specs(function)
    call = SignatureCall(function, specs)
    assert call.flat
    serialized = codec.examples_to_protos(ROWS, None, {"fare": "float", "payment_type": "bytes"})
    arrays = {"examples": np.asarray(serialized, dtype=object)}
    np.testing.assert_array_equal(_numpy(call(arrays))["outputs"],
                                  _numpy(_public(function, specs, arrays))["outputs"])


def test_arrays_that_do_not_fit_their_spec_take_the_public_call(model):
    """Whatever TF's public call does with them (convert, refuse, or pass them on
    as its own flat fallback does), the caller does the same."""
    function = model.signatures["serving_default"]
    specs = _specs(function)
    call = SignatureCall(function, specs)
    arrays = _arrays(specs, ROWS)
    for odd in (dict(arrays, fare=arrays["fare"].astype(np.float64)),   # float64 for float32
                dict(arrays, fare=arrays["fare"].reshape(-1, 1))):      # 2-D for a [None] input
        np.testing.assert_array_equal(_numpy(call(odd))["outputs"],
                                      _numpy(_public(function, specs, odd))["outputs"])


def test_a_function_without_a_flat_call_is_called_by_keyword():
    specs = {"x": codec.InputSpec.of("x", tf.TensorSpec([None], tf.float32, name="x"))}
    call = SignatureCall(lambda x: {"y": x * 2}, specs)
    assert not call.flat
    np.testing.assert_array_equal(call({"x": np.asarray([1, 2], np.float32)})["y"].numpy(), [2, 4])
