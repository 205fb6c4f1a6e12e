"""LocalInfraValidator: pure checks, then Executor.Do on real artifacts.

Do() starts the real model server on a tiny SavedModel and writes the
InfraBlessing; a well-behaved model is blessed, one answering NaN or values
above 1 is not, with the reason stored and the TFX marker files written.
"""
import concurrent.futures
import json
import math
import os
from typing import Dict, List

import pytest
import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils
from tfx.types import artifact_utils, standard_artifacts

from components import local_infra_validator as liv

FEATURES = {"fare": "float", "payment_type": "string", "trip_seconds": "int"}


def make_example(**features) -> tf.train.Example:
    example = tf.train.Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return example


EXAMPLES = [
    make_example(fare=[5.0], payment_type=[b"Card"], trip_seconds=[300]),
    make_example(fare=[12.0], payment_type=[b"Cash"], trip_seconds=[600]),
    make_example(fare=[7.5], payment_type=[], trip_seconds=[60]),   # empty
    make_example(fare=[3.0], trip_seconds=[120]),                   # missing
    make_example(fare=[20.0], payment_type=[b"Card"], trip_seconds=[900]),
]


# --------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------

def test_requests_skip_incomplete_examples_and_convert_dtypes():
    requests = liv.build_canary_requests(EXAMPLES, FEATURES, num_requests=3)
    assert requests == [
        {"instances": [{"fare": 5.0, "payment_type": "Card",
                        "trip_seconds": 300}]},
        {"instances": [{"fare": 12.0, "payment_type": "Cash",
                        "trip_seconds": 600}]},
        {"instances": [{"fare": 20.0, "payment_type": "Card",
                        "trip_seconds": 900}]},
    ]
    assert isinstance(requests[0]["instances"][0]["trip_seconds"], int)


def test_requests_reuse_examples_when_too_few():
    requests = liv.build_canary_requests(EXAMPLES, FEATURES, num_requests=7)
    assert len(requests) == 7
    assert requests[3] == requests[0]


def test_requests_fail_loudly_when_no_example_has_the_features():
    with pytest.raises(ValueError, match="no eval example"):
        liv.build_canary_requests(EXAMPLES, {"tips": "float"}, 2)


def test_feature_keys_json_rejects_unknown_dtype():
    with pytest.raises(ValueError, match="double"):
        liv.parse_feature_keys(json.dumps({"fare": "double"}))


def test_percentile_is_nearest_rank():
    latencies = list(range(1, 21))  # 1..20 ms
    assert liv.percentile(latencies, 95) == 19
    assert liv.percentile(latencies, 50) == 10
    assert liv.percentile([7.0], 95) == 7.0


ONE = {"instances": [{"fare": 1.0}]}


def ok(prediction, latency_ms=5.0):
    return liv.CanaryResponse(200, {"predictions": [prediction]}, latency_ms)


def test_check_responses_passes_good_probabilities():
    responses = [ok([0.2]), ok([1.0]), ok([0.0])]
    assert liv.check_responses([ONE] * 3, responses, 100.0) == []


@pytest.mark.parametrize("response, reason", [
    (liv.CanaryResponse(400, {"error": "missing fare"}, 5.0),
     "HTTP 400: missing fare"),
    (liv.CanaryResponse(200, {"predictions": [[0.1], [0.2]]}, 5.0),
     "expected 1 prediction(s), got 2"),
    (liv.CanaryResponse(200, {"outputs": [[0.1]]}, 5.0), "'predictions'"),
    (ok([1.5]), "outside [0, 1]"),
    (ok([-0.1]), "outside [0, 1]"),
    (ok([math.nan]), "not finite"),
    (ok(["yes"]), "non-numeric"),
])
def test_check_responses_names_each_failure(response, reason):
    failures = liv.check_responses([ONE, ONE], [ok([0.5]), response], 100.0)
    assert len(failures) == 1
    assert failures[0].startswith("request 1: ")
    assert reason in failures[0]


def test_check_responses_enforces_the_p95_latency_budget():
    fast = [ok([0.5], latency_ms=10.0)] * 19
    assert liv.check_responses([ONE] * 20, fast + [ok([0.5], 900.0)],
                               50.0) == []  # one outlier is under p95
    slow = fast[:17] + [ok([0.5], 900.0)] * 3
    failures = liv.check_responses([ONE] * 20, slow, 50.0)
    assert failures == ["p95 latency 900.0 ms exceeds the budget of 50 ms"]


def test_component_wires_spec_keys_and_rejects_bad_features():
    model = types.Channel(type=standard_artifacts.Model)
    examples = types.Channel(type=standard_artifacts.Examples)
    component = liv.LocalInfraValidator(
        model=model, examples=examples, model_name="taxi",
        feature_keys_json=json.dumps(FEATURES), num_requests=5,
        latency_budget_ms=250)
    assert component.outputs["blessing"].type == standard_artifacts.InfraBlessing
    assert component.exec_properties == {
        "model_name": "taxi", "feature_keys_json": json.dumps(FEATURES),
        "num_requests": 5, "latency_budget_ms": 250.0, "schema_path": ""}
    with pytest.raises(ValueError, match="unknown dtype"):
        liv.LocalInfraValidator(model=model, examples=examples,
                                model_name="taxi",
                                feature_keys_json='{"fare": "decimal"}')


# --------------------------------------------------------------------------
# Executor.Do on real artifacts and a real server
# --------------------------------------------------------------------------

class GoodModel(tf.Module):
    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.float32, name="fare"),
        tf.TensorSpec([None], tf.string, name="payment_type"),
        tf.TensorSpec([None], tf.int64, name="trip_seconds"),
    ])
    def serve(self, fare, payment_type, trip_seconds):
        cash = tf.cast(tf.equal(payment_type, "Cash"), tf.float32)
        logit = 0.1 * fare - cash + tf.cast(trip_seconds, tf.float32) / 1e3
        return {"outputs": tf.sigmoid(tf.expand_dims(logit, -1))}


class BrokenModel(tf.Module):
    """Returns the raw fare (> 1) for cards and NaN for cash."""

    @tf.function(input_signature=GoodModel.serve.input_signature)
    def serve(self, fare, payment_type, trip_seconds):
        del trip_seconds
        nan = tf.fill(tf.shape(fare), float("nan"))
        value = tf.where(tf.equal(payment_type, "Cash"), nan, fare)
        return {"outputs": tf.expand_dims(value, -1)}


def make_artifacts(root, module: tf.Module) -> Dict[str, List[types.Artifact]]:
    """Model (SavedModel under Format-Serving/), Examples (Split-eval/) and
    an empty InfraBlessing, laid out as TFX components write them."""
    model = standard_artifacts.Model()
    model.uri = str(root / "model")
    tf.saved_model.save(module, os.path.join(model.uri, "Format-Serving"),
                        signatures={"serving_default": module.serve})

    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    eval_dir = os.path.join(examples.uri, "Split-eval")
    os.makedirs(eval_dir)
    with tf.io.TFRecordWriter(os.path.join(eval_dir, "data.tfrecord.gz"),
                              options="GZIP") as writer:
        for example in EXAMPLES:
            writer.write(example.SerializeToString())

    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(root / "blessing")
    return {"model": [model], "examples": [examples], "blessing": [blessing]}


def run_do(artifacts: Dict[str, List[types.Artifact]], schema_path: str = "") -> types.Artifact:
    liv.Executor().Do(
        {"model": artifacts["model"], "examples": artifacts["examples"]},
        {"blessing": artifacts["blessing"]},
        {"model_name": "taxi", "feature_keys_json": json.dumps(FEATURES),
         "num_requests": 6, "latency_budget_ms": 2000.0, "schema_path": schema_path})
    return artifacts["blessing"][0]


# The gateway validates canary requests against the schema, as in serving:
# "Card" is outside this schema's payment_type domain.
STRICT_SCHEMA = """
feature { name: "fare" type: FLOAT float_domain { min: 0 max: 100 } presence { min_fraction: 1 } }
feature { name: "payment_type" type: BYTES domain: "payment_type" presence { min_fraction: 1 } }
feature { name: "trip_seconds" type: INT presence { min_fraction: 0 } }
string_domain { name: "payment_type" value: "Cash" value: "Credit Card" }
"""


@pytest.fixture(scope="module")
def blessings(tmp_path_factory) -> Dict[str, types.Artifact]:
    """Runs Do() for both models at once: each spends ~10 s starting TF in
    its model server, and the two start-ups overlap."""
    models = {"good": GoodModel(), "broken": BrokenModel(), "strict": GoodModel()}
    artifacts = {name: make_artifacts(tmp_path_factory.mktemp(name), module)
                 for name, module in models.items()}
    schema = tmp_path_factory.mktemp("schema") / "schema.pbtxt"
    schema.write_text(STRICT_SCHEMA)
    schemas = {"strict": str(schema)}
    with concurrent.futures.ThreadPoolExecutor(len(models)) as pool:
        futures = {name: pool.submit(run_do, artifacts[name], schemas.get(name, ""))
                   for name in models}
    return {name: future.result() for name, future in futures.items()}


@pytest.mark.integration  # Do() starts the gateway as a model server process
def test_do_blesses_a_servable_probability_model(blessings):
    blessing = blessings["good"]
    assert blessing.get_int_custom_property("blessed") == 1
    assert model_utils.is_infra_validated(blessing)  # what Pusher checks
    assert os.listdir(blessing.uri) == ["INFRA_BLESSED"]
    assert not blessing.has_custom_property("reason")


@pytest.mark.integration  # Do() starts the gateway as a model server process
def test_do_does_not_bless_nan_or_out_of_range_outputs(blessings):
    blessing = blessings["broken"]
    assert blessing.get_int_custom_property("blessed") == 0
    assert not model_utils.is_infra_validated(blessing)
    assert os.listdir(blessing.uri) == ["INFRA_NOT_BLESSED"]
    reason = blessing.get_string_custom_property("reason")
    assert "request 0: prediction 5.0 is outside [0, 1]" in reason
    assert "request 1: prediction nan is not finite" in reason


@pytest.mark.integration  # Do() starts the gateway as a model server process
def test_do_validates_canary_requests_against_the_schema(blessings):
    blessing = blessings["strict"]
    assert blessing.get_int_custom_property("blessed") == 0
    reason = blessing.get_string_custom_property("reason")
    assert "request 0: HTTP 400" in reason and "payment_type" in reason and "'Card'" in reason


def test_when_no_example_is_complete_the_missing_features_are_left_out():
    """An eval split lacking a feature in every row (served traffic whose log drops an optional
    feature) still gives canary requests: the rows as clients send them, the feature left out."""
    partial = [make_example(fare=[3.0], trip_seconds=[120]),
               make_example(fare=[4.0], payment_type=[], trip_seconds=[60])]
    requests = liv.build_canary_requests(partial, FEATURES, num_requests=3)
    assert requests == [{"instances": [{"fare": 3.0, "trip_seconds": 120}]},
                        {"instances": [{"fare": 4.0, "trip_seconds": 60}]},
                        {"instances": [{"fare": 3.0, "trip_seconds": 120}]}]


def test_complete_examples_are_preferred_over_partial_ones():
    requests = liv.build_canary_requests(EXAMPLES, FEATURES, num_requests=10)
    assert all(set(r["instances"][0]) == set(FEATURES) for r in requests)
