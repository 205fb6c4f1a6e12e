"""Edge exports: TFLite and TF.js give the SavedModel's outputs on real taxi rows.

One tiny model is trained in-process on taxi CSV rows (testing/edge_model.py:
Transform through tft_beam, a few Keras epochs) and exported once with
``components.trainer_run.export_model`` (``trainer.export`` writes the edge
SavedModels, ``edge.convert`` converts them); every test shares it. The literal
``assets.extra/...`` paths pin the layout clients rely on.
"""
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from edge import convert, runtime
from edge.signature import read_signature
from testing.edge_model import assert_edge_transform_matches, read_taxi_csv, serving_rows, train_and_export
from trainer import edge_graph, features
from trainer.kinds import registry
from trainer.kinds.base import constant_node_name

TRAIN_ROWS = 2000
EVAL_ROWS = 1100
TOLERANCE = 1e-4


def _edge_cases(cfg, rows):
    """Unseen categories, out-of-range ids, extreme and boundary values, empty strings."""
    base = rows[0]
    cases = []
    for i, value in enumerate(["Bitcoin", "", "cash", "Unseen Cab Co #1", "Ünïcode Taxi"]):
        cases.append(dict(base, payment_type=value, company=value if i % 2 else base["company"]))
    for hour in (-1, 24, 99, -2 ** 31, 2 ** 31 - 1):
        cases.append(dict(base, trip_start_hour=hour, pickup_community_area=hour, dropoff_community_area=hour))
    for ts in (0, -1, 86399, 951782400, 2 ** 31 - 1, -2 ** 31):  # 2000-02-29 among them
        cases.append(dict(base, trip_start_timestamp=ts))
    for fare in (-5.0, 0.0, 1e-6, 1e6, 3.4e38):
        cases.append(dict(base, fare=fare, trip_miles=fare, trip_seconds=int(min(fare, 2 ** 31 - 1))))
    return cases


@pytest.fixture(scope="module")
def trained(taxi_config, tmp_path_factory):
    """(cfg, exported model dir, Transform output, raw training rows, raw eval rows)."""
    root = str(tmp_path_factory.mktemp("edge"))
    model_dir, tft_output, train_raw, _ = train_and_export(taxi_config, root, TRAIN_ROWS)
    return taxi_config, model_dir, tft_output, train_raw, read_taxi_csv(taxi_config, TRAIN_ROWS, EVAL_ROWS)


@pytest.fixture(scope="module")
def eval_rows(trained):
    cfg, _, _, _, eval_raw = trained
    rows = serving_rows(cfg, eval_raw)
    return rows + _edge_cases(cfg, rows)


def test_eval_rows_cover_missing_values_and_unseen_categories(trained, eval_rows):
    cfg, _, tft_output, _, eval_raw = trained
    assert len(eval_rows) >= 1000
    assert sum(any(v is None for v in row.values()) for row in eval_raw) >= 100
    vocab = set(tft_output.vocabulary_by_name(features.vocabulary_name("company")))
    assert sum(row["company"].encode() not in vocab for row in eval_rows) >= 20


def test_tflite_and_tfjs_match_the_saved_model(trained, eval_rows):
    _, model_dir, _, _, _ = trained
    reference = runtime.saved_model(model_dir, eval_rows).outputs
    assert reference.shape == (len(eval_rows),)
    assert reference.std() > 0.05  # a model that says something, so equality means something
    for run in (runtime.tflite, runtime.tfjs):
        got = run(model_dir, eval_rows).outputs
        assert got.shape == reference.shape
        worst = int(np.argmax(np.abs(got - reference)))
        assert abs(got[worst] - reference[worst]) <= TOLERANCE, (
            f"{run.__name__}: row {worst} {eval_rows[worst]}: {got[worst]} vs SavedModel {reference[worst]}")


def test_single_row_calls_match_batched_calls(trained, eval_rows):
    _, model_dir, _, _, _ = trained
    rows = eval_rows[:20] + eval_rows[-10:]
    batched = runtime.tflite(model_dir, rows).outputs
    for run in (runtime.tflite, runtime.tfjs):
        single = run(model_dir, rows, single=True)
        assert len(single.per_row_ms) == len(rows)
        np.testing.assert_allclose(single.outputs, batched, atol=TOLERANCE)


def test_tflite_uses_builtin_ops_only(trained):
    _, model_dir, _, _, _ = trained
    signature = read_signature(model_dir)
    assert signature["tflite"]["select_tf_ops"] is False
    assert [i["name"] for i in signature["inputs"]] == [f.name for f in trained[0].features]
    assert signature["output"] == {"name": "outputs", "dtype": "float32", "shape": [-1, 1]}
    model_json = os.path.join(model_dir, "assets.extra", "tfjs", "model.json")
    with open(model_json) as f:
        ops = {node["op"] for node in json.load(f)["modelTopology"]["node"]}
    assert not ops & {"ParseExampleV2", "InitializeTableFromTextFileV2", "BoostedTreesBucketize", "LowerBound"}


def test_edge_transform_equals_transform_graph(trained, eval_rows):
    """Each transformed feature, edge constants vs the real Transform graph."""
    cfg, model_dir, tft_output, _, _ = trained
    assert_edge_transform_matches(cfg, model_dir, tft_output, eval_rows)


def test_analyzer_constants_are_read_back_from_the_transform_graph(trained):
    cfg, _, tft_output, train_rows, _ = trained
    constants = edge_graph.read_analyzer_constants(tft_output.transform_savedmodel_dir)
    fares = np.log1p(np.maximum([r["fare"] for r in train_rows if r["fare"] is not None], 0.0))
    mean = constants[constant_node_name("fare", "mean")]
    var = constants[constant_node_name("fare", "var")]
    assert mean == pytest.approx(fares.mean(), rel=1e-5) and var == pytest.approx(fares.var(), rel=1e-4)
    bucketized = [f for f in cfg.features if f.kind == "bucketized"]
    for f in bucketized:
        assert constants[constant_node_name(f.name, "boundaries")].size >= f.buckets - 1


def test_cli_converts_a_pushed_model_again(trained, tmp_path):
    _, model_dir, _, _, _ = trained
    pushed = str(tmp_path / "taxi" / "1700000000")
    shutil.copytree(model_dir, pushed)
    os.remove(os.path.join(pushed, "assets.extra", "model.tflite"))
    assert convert.main(["--saved_model", pushed]) == 0
    signature = read_signature(pushed)
    assert signature["source"]["model_version"] == "1700000000"
    assert signature["source"]["dataset"] == "taxi"
    rows = serving_rows(trained[0], trained[4][:50])
    np.testing.assert_allclose(runtime.tflite(pushed, rows).outputs,
                               runtime.saved_model(pushed, rows).outputs, atol=TOLERANCE)


def test_cli_names_what_is_missing(tmp_path, capsys):
    assert convert.main(["--saved_model", str(tmp_path)]) == 2
    assert "no saved_model.pb" in capsys.readouterr().err
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert convert.main(["--saved_model", str(tmp_path)]) == 1
    assert "no edge SavedModel" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda row: row.pop("company"), "row 1, feature 'company': missing"),
    (lambda row: row.update(fare="12.5"), "row 1, feature 'fare': expected a finite number"),
    (lambda row: row.update(trip_start_timestamp=2 ** 40), "feature 'trip_start_timestamp': expected an integer "
                                                           "in the int32 range"),
])
def test_tfjs_script_names_the_bad_row_and_feature(trained, eval_rows, change, message):
    rows = [dict(eval_rows[0]), dict(eval_rows[1])]
    change(rows[1])
    with pytest.raises(RuntimeError, match=message):
        runtime.tfjs(trained[1], rows)


def test_a_kind_without_edge_analysis_fails_the_edge_export_naming_the_feature(trained, monkeypatch):
    cfg, _, tft_output, _, _ = trained
    monkeypatch.setitem(registry.KINDS, "numeric", dataclasses.replace(registry.KINDS["numeric"], edge_analysis=None))
    with pytest.raises(ValueError, match="feature 'fare': kind 'numeric' has no edge export"):
        edge_graph.edge_analyses(cfg, tft_output)
