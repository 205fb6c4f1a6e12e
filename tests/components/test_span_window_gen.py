"""The Kubeflow span window: TFX's driver resolves the eval span, the executor reads the window.

The driver step is TFX's own FileBasedInputProcessor (what the KFP driver runs
before the cache check); the executor runs for real on a few tiny CSV spans.
"""
import csv
import json
import os

import pytest
import tensorflow as tf
from tfx.components.example_gen import input_processor, utils
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from common.loader import load_config
from common.paths import REPO_ROOT
from components.span_window_gen import (
    RANGE_PARAMETER,
    SpanWindowExecutor,
    build_span_window_example_gen,
    range_parameter,
    span_range_json,
    window,
)
from components.time_split import EVAL_SPAN, SPAN_VERSIONS, TRAIN_SPANS, SpanWindowError

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")


def _spans(root, spans):
    """span-<s>/data.csv with s rows whose fare is s (so a row tells its span)."""
    for span in spans:
        os.makedirs(root / f"span-{span}", exist_ok=True)
        with open(root / f"span-{span}" / "data.csv", "w", newline="") as f:
            csv.writer(f).writerows([["fare", "company"]] + [[str(span), "x"]] * span)


def _driver(component, range_config=None):
    """exec_properties after TFX's driver logic: the span resolved, the patterns rewritten."""
    props = dict(component.exec_properties)
    input_config = proto_utils.json_to_proto(props[standard_component_specs.INPUT_CONFIG_KEY],
                                             example_gen_pb2.Input())
    processor = input_processor.FileBasedInputProcessor(
        props[standard_component_specs.INPUT_BASE_KEY], input_config.splits, range_config)
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    props[standard_component_specs.INPUT_CONFIG_KEY] = proto_utils.proto_to_json(input_config)
    props[utils.SPAN_PROPERTY_NAME], props[utils.VERSION_PROPERTY_NAME] = span, version
    return {k: v for k, v in props.items() if v is not None}


def _fares(examples, split):
    files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
    return sorted(tf.train.Example.FromString(r.numpy()).features.feature["fare"].int64_list.value[0]
                  for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _run(tmp_path, cfg, range_config=None):
    component = build_span_window_example_gen(cfg, range_config)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    SpanWindowExecutor().Do({}, {"examples": [examples]}, _driver(component, range_config))
    return examples


def test_the_newest_span_evaluates_and_the_spans_before_it_train(tmp_path):
    _spans(tmp_path / "data", [1, 2, 4, 5])
    cfg = load_config(SPANS_CONFIG, [f"data.path={tmp_path / 'data'}", "data.spans.train_spans=3"])
    examples = _run(tmp_path, cfg)
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    assert _fares(examples, "eval") == [5] * 5
    # a rolling range by span number: 2..4 (span 3 is missing, span 1 is outside)
    assert _fares(examples, "train") == [2] * 2 + [4] * 4
    assert examples.get_int_custom_property(EVAL_SPAN) == 5
    assert examples.get_string_custom_property(TRAIN_SPANS) == "2,4"
    assert sorted(json.loads(examples.get_string_custom_property(SPAN_VERSIONS))) == ["2", "4", "5"]


def test_the_runtime_parameter_names_an_older_eval_span(tmp_path):
    _spans(tmp_path / "data", [1, 2, 3, 4])
    cfg = load_config(SPANS_CONFIG, [f"data.path={tmp_path / 'data'}", "data.spans.train_spans=1"])
    range_config = proto_utils.json_to_proto(span_range_json(3), range_config_pb2.RangeConfig())
    examples = _run(tmp_path, cfg, range_config)
    assert _fares(examples, "eval") == [3] * 3 and _fares(examples, "train") == [2] * 2
    assert range_config.static_range.start_span_number == range_config.static_range.end_span_number == 3


def test_a_window_with_nothing_to_train_on_names_the_spans(tmp_path):
    _spans(tmp_path, [1, 5])
    with pytest.raises(SpanWindowError, match=r"within data.spans.train_spans \(2\) spans before the eval "
                                              r"span 5.*span\(s\) \[1, 5\]"):
        window(str(tmp_path), "span-{SPAN}/*", 5, 2)


def test_the_component_takes_the_range_as_a_runtime_parameter(tmp_path):
    _spans(tmp_path, [1, 2])
    cfg = load_config(SPANS_CONFIG, [f"data.path={tmp_path}"])
    parameter = range_parameter()
    component = build_span_window_example_gen(cfg, parameter)
    assert component.exec_properties[standard_component_specs.RANGE_CONFIG_KEY] is parameter
    assert parameter.name == RANGE_PARAMETER and parameter.ptype is str and parameter.default == ""
