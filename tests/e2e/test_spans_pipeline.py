"""The real DAG on taxi spans: a time-aware split recorded in ML Metadata, and a gate that remembers.

The taxi CSV inside tfx is cut into quarterly spans by the real cutter; the
three 2016 quarters 13-15 (about 200 rows each) make the first run: backfill
ingests 13 and 14, the run ingests 15, trains on 13-14 and evaluates on 15.
Then span 16 arrives drifted, then empty: both stop at the gate, compared with
the statistics the first run accepted.
"""
import csv
import glob
import os
import shutil

import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from common.loader import load_config
from common.paths import REPO_ROOT, taxi_data_dir
from pipeline.__main__ import main
from pipeline.report import summary_text
from pipeline.results import collect, latest_run_outputs
from pipeline.run_paths import local_paths
from pipeline.span_cutter import cut_spans, quarter_of

pytestmark = pytest.mark.e2e

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")
FIRST_SPANS = (13, 14, 15)  # 2016Q1-Q3


def _overrides(root):
    return [f"data.path={root}/data", f"run_dir={root}/runs", f"serving.push_dir={root}/serving",
            "data.spans.train_spans=2", "tuner.enabled=false", "tuner.reuse_last=false",
            "trainer.train_steps=30", "trainer.eval_steps=5", "trainer.batch_size=64",
            "serving.edge_exports=false", "evaluation.min_auc=0.5", "evaluation.min_accuracy=0.5",
            "serving.canary_requests=5", "serving.latency_budget_ms=10000"]


def _run(root):
    args = ["run", "--config", SPANS_CONFIG]
    for override in _overrides(root):
        args += ["--set", override]
    return main(args)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def spans_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("spans"))
    cut_spans([os.path.join(taxi_data_dir(), "data.csv")], os.path.join(root, "all"), "trip_start_timestamp")
    for span in FIRST_SPANS:
        shutil.copytree(os.path.join(root, "all", f"span-{span}"), os.path.join(root, "data", f"span-{span}"))
    return root


@pytest.fixture(scope="module")
def first_run(spans_root):
    code = _run(spans_root)
    return load_config(SPANS_CONFIG, _overrides(spans_root)), code


def _ingested_spans(cfg):
    """Span numbers on this pipeline's ExampleGen artifacts, straight from ML Metadata."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = local_paths(cfg).metadata
    store = metadata_store.MetadataStore(config)
    node = store.get_context_by_type_and_name("node", f"{cfg.pipeline_name}.CsvExampleGen")
    return sorted(a.custom_properties["span"].int_value for a in store.get_artifacts_by_context(node.id))


def _quarters(split_dir):
    """The (year, quarter) of every example's trip_start_timestamp in one split directory."""
    files = glob.glob(os.path.join(split_dir, "*"))
    quarters = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        quarters.append(quarter_of(example.features.feature["trip_start_timestamp"].int64_list.value[0]))
    return quarters


def test_first_run_trains_on_older_spans_and_evaluates_on_the_newest(first_run, spans_root):
    cfg, code = first_run
    assert code == 0
    assert _ingested_spans(cfg) == [13, 14, 15]
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.spans["train"] == [13, 14] and result.spans["eval"] == 15 and result.spans["ingested"] == 15
    split_uri = result.artifacts["TimeSplit"]["examples"]
    train = _quarters(os.path.join(split_uri, "Split-train"))
    evaluation = _quarters(os.path.join(split_uri, "Split-eval"))
    rows = {s: len(_rows(os.path.join(spans_root, "data", f"span-{s}", "data.csv"))) - 1 for s in FIRST_SPANS}
    assert len(train) == rows[13] + rows[14] and set(train) == {(2016, 1), (2016, 2)}
    assert len(evaluation) == rows[15] and set(evaluation) == {(2016, 3)}
    assert result.metrics["example_count"] == rows[15]  # the Evaluator read the newest span
    # (whether this 30-step model is pushed is the baseline gate's call, not this test's)
    assert result.drift_checked is False
    summary = summary_text(cfg, result)
    assert "Data: train on spans 13, 14, evaluate on span 15; this run ingested span 15" in summary
    assert "Data gate: passed\n  drift not checked: ML Metadata holds no accepted data" in summary


def _write_span(root, span, rows):
    directory = os.path.join(root, "data", f"span-{span}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "data.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _latest_nodes(cfg):
    return set(latest_run_outputs(local_paths(cfg).metadata, cfg.pipeline_name))


def test_drifted_span_stops_at_the_gate_against_the_accepted_data(first_run, spans_root, capsys):
    cfg, _ = first_run
    header, *rows = _rows(os.path.join(spans_root, "all", "span-16", "data.csv"))
    payment = header.index("payment_type")
    _write_span(spans_root, 16, [header] + [row[:payment] + ["Cash"] + row[payment + 1:] for row in rows])
    assert _run(spans_root) == 1
    err = capsys.readouterr().err
    assert "against the curated schema and the last accepted data" in err
    assert "split 'eval': feature 'payment_type': drift vs the accepted data: L-infinity distance" in err
    assert "above the threshold 0.1 (largest change: 'Cash')" in err
    assert "split 'train'" not in err  # spans 14-15 against the accepted 13-14: no drift
    assert "Transform" not in _latest_nodes(cfg)
    outputs = latest_run_outputs(local_paths(cfg).metadata, cfg.pipeline_name)
    window = outputs["TimeSplit"]["examples"].custom_properties
    assert window["train_spans"].string_value == "14,15" and window["eval_span"].int_value == 16


def test_empty_span_stops_at_the_gate_saying_so(first_run, spans_root, capsys):
    cfg, _ = first_run
    header = _rows(os.path.join(spans_root, "all", "span-16", "data.csv"))[0]
    _write_span(spans_root, 16, [header])
    assert _run(spans_root) == 1
    err = capsys.readouterr().err
    assert "1 anomaly against the curated schema and the last accepted data" in err
    assert "split 'eval': empty: 0 examples (an empty file, a CSV with only its header, or an empty span)" in err
    assert "Transform" not in _latest_nodes(cfg)
