"""serving.feedback.join: labelled spans that ExampleGen reads and Transform labels like training data."""
import glob
import json
import os

import pytest
import tensorflow as tf

from serving import cli, request_log
from serving.feedback.join import (
    DATA_FILE,
    EXAMPLE_GEN_PATTERN,
    join_span,
    labelled_dir,
    list_versions,
    read_manifest,
    version_dir,
)
from serving.feedback.labels import LabelSpec
from serving.feedback.service import Feedback
from serving.feedback.store import LabelRecord, LabelStore
from testing.feedback import instance, log_requests
from tests.conftest import TAXI_CONFIG

WINDOW = 3600


@pytest.fixture
def setup(tmp_path, taxi_config):
    """A log of 'r0'..'r4' (2 rows each) in one span, and feedback over it."""
    log_dir = str(tmp_path / "request_log")
    log_requests(log_dir, taxi_config, [f"r{i}" for i in range(5)], rows=2)
    spec = LabelSpec.from_config(taxi_config)
    feedback = Feedback.open(log_dir, spec, WINDOW, 24)
    return log_dir, spec, feedback, request_log.list_spans(log_dir)[0]


def send(feedback, *items):
    return feedback.submit("taxi", [dict(zip(("request_id", "row", "label"), item)) for item in items],
                           lambda i: f"feedback[{i}]")


def read_version(log_dir, span, version):
    files = glob.glob(os.path.join(version_dir(log_dir, span, version), "*"))
    assert [os.path.basename(f) for f in files] == [DATA_FILE]
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def value(example, name):
    feature = example.features.feature[name]
    return list(getattr(feature, feature.WhichOneof("kind")).value)


def test_a_labelled_row_holds_the_logged_raw_features_and_the_raw_label(setup, taxi_config):
    log_dir, spec, feedback, span = setup
    send(feedback, ("r0", 0, 0.0), ("r0", 1, 4.5), ("r3", 1, 1.25))
    result = join_span(log_dir, span, spec)
    assert (result.version, result.written, result.rows, result.labels, result.unmatched) == (1, True, 3, 3, 0)
    rows = read_version(log_dir, span, 1)
    logged = {f.name for f in taxi_config.features} - set(taxi_config.serving.sensitive_features)
    for example in rows:
        assert set(example.features.feature) == logged | {"tips"}  # no __log_ metadata, no dropped geo
    assert [(value(e, "fare"), value(e, "tips")) for e in rows] == [([5.0], [0.0]), ([6.0], [4.5]),
                                                                    ([12.0], [1.25])]
    manifest = read_manifest(log_dir, span, 1)
    assert (manifest["rows"], manifest["label_column"], manifest["version"]) == (3, "tips", 1)


def test_transform_computes_the_training_label_from_a_labelled_span(setup, taxi_config):
    """The pipeline's own parsing spec and make_label, as Transform runs them on training data."""
    from trainer import features
    from trainer.preprocessing import make_label

    log_dir, spec, feedback, span = setup
    send(feedback, ("r0", 0, 0.0), ("r0", 1, 4.5), ("r1", 0, 1.0), ("r1", 1, 1.7))
    join_span(log_dir, span, spec)
    serialized = [e.SerializeToString() for e in read_version(log_dir, span, 1)]
    parsed = tf.io.parse_example(serialized, features.raw_feature_spec(taxi_config))
    # fares 5, 6, 7, 8: big_tipper = tips > 0.2 * fare
    assert make_label(taxi_config.label, parsed).numpy().tolist() == [0, 1, 0, 1]


def test_a_late_label_makes_a_new_version_and_never_changes_the_old_one(setup):
    log_dir, spec, feedback, span = setup
    send(feedback, ("r0", 0, 2.0))
    assert join_span(log_dir, span, spec).version == 1
    before = open(os.path.join(version_dir(log_dir, span, 1), DATA_FILE), "rb").read()
    again = join_span(log_dir, span, spec)
    assert (again.version, again.written, again.rows) == (1, False, 1)  # unchanged labels: no version
    send(feedback, ("r0", 0, 2.0))  # a duplicate changes nothing either
    assert not join_span(log_dir, span, spec).written
    send(feedback, ("r4", 1, 3.0))
    late = join_span(log_dir, span, spec)
    assert (late.version, late.written, late.rows) == (2, True, 2)
    assert list_versions(log_dir, span) == [1, 2]
    assert open(os.path.join(version_dir(log_dir, span, 1), DATA_FILE), "rb").read() == before
    assert [value(e, "tips") for e in read_version(log_dir, span, 2)] == [[2.0], [3.0]]


def test_example_gen_resolves_the_newest_version_of_the_newest_span(setup):
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2

    log_dir, spec, feedback, span = setup
    send(feedback, ("r0", 0, 2.0))
    join_span(log_dir, span, spec)
    send(feedback, ("r1", 0, 2.0))
    join_span(log_dir, span, spec)
    os.makedirs(os.path.join(labelled_dir(log_dir), f"span-{span}", ".version-3.abcd"))  # a join under way
    splits = [example_gen_pb2.Input.Split(name="single_split", pattern=EXAMPLE_GEN_PATTERN)]
    _, found_span, version = utils.calculate_splits_fingerprint_span_and_version(
        labelled_dir(log_dir), splits)
    assert (found_span, version) == (span, 2)
    assert splits[0].pattern == f"span-{span}/version-2/*"
    assert glob.glob(os.path.join(labelled_dir(log_dir), splits[0].pattern)) == [
        os.path.join(version_dir(log_dir, span, 2), DATA_FILE)]


def test_unmatched_conflicting_and_ambiguous_labels_are_counted_not_joined(setup, taxi_config):
    log_dir, spec, feedback, span = setup
    send(feedback, ("r0", 0, 1.0))
    store_a, store_b = LabelStore(log_dir), LabelStore(log_dir)  # two writers racing, and a label
    store_a.append([(span, LabelRecord("r1", 0, 1.0, "taxi", 100)),    # whose row is not logged
                    (span, LabelRecord("ghost", 0, 1.0, "taxi", 100))])
    store_b.append([(span, LabelRecord("r1", 0, 9.0, "taxi", 200))])
    log_requests(log_dir, taxi_config, ["r2"], rows=2, timestamp=span * WINDOW + 1)  # r2 twice in the span
    store_a.append([(span, LabelRecord("r2", 0, 1.0, "taxi", 100))])
    result = join_span(log_dir, span, spec)
    assert (result.rows, result.labels, result.unmatched, result.conflicts, result.ambiguous) == (2, 4, 1, 1, 1)
    assert [value(e, "tips") for e in read_version(log_dir, span, 1)] == [[1.0], [1.0]]  # first received


def test_join_command_joins_every_span_with_labels(setup, capsys):
    log_dir, spec, feedback, span = setup
    send(feedback, ("r2", 1, 0.5))
    args = ["join", "--config", TAXI_CONFIG, "--set", f"serving.request_log_dir={log_dir}"]
    assert cli.main(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["span"], p["version"], p["written"], p["rows"]) for p in printed] == [(span, 1, True, 1)]
    assert cli.main(args + ["--span", str(span)]) == 0
    assert json.loads(capsys.readouterr().out)["written"] is False
    assert value(read_version(log_dir, span, 1)[0], "fare") == [instance(5)["fare"]]  # r2's row 1
