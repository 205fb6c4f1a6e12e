"""The real LIAR model at the edge: the browser extension and TF.js in Node give the
pushed SavedModel's serving_default outputs.

Shares the sampled pipeline run (tests/e2e/conftest.py::liar_run). Statements come
from the shared validation TSV at test time (research-only data, never copied into
this repository): the extension gets ~20 with quotes, digits, capitals and non-ASCII
characters, fed as a page sees them (metadata missing); TF.js in Node gets ~200 rows
with their metadata and, for the sampled eval split, the claim-neighbour record the run made.
"""
import json
import os

import numpy as np
import pytest

from components import raw_examples
from edge import browser_extension, runtime
from pipeline.results import collect
from pipeline.run_paths import local_paths
from tests.e2e.conftest import TRAIN_ROWS, liar_file
from tests.extension.conftest import drive_extension
from trainer import features

# one worker runs both LIAR files, so the session-scoped sampled run (conftest.liar_run) is made once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("liar_run")]

TOLERANCE = 1e-4
LATENCY_TARGET_MS = 5.0


def _validation_lines(cfg):
    names = [c.name for c in cfg.data.columns]
    with open(liar_file("valid.tsv"), encoding="utf-8") as f:
        return [dict(zip(names, line.rstrip("\r\n").split("\t"))) for line in f]


def _pick_statements(lines, n=20):
    """Statements that exercise the normalisation: quotes, digits, capitals, non-ASCII."""
    kinds = [lambda s: any(ord(c) > 127 for c in s), lambda s: '"' in s or "'" in s,
             lambda s: any(c.isdigit() for c in s), lambda s: sum(c.isupper() for c in s) > 3]
    picked = []
    for kind in kinds:
        picked += [line["statement"] for line in lines if kind(line["statement"])
                   and line["statement"] not in picked][:n // len(kinds)]
    for kind in kinds:
        assert any(kind(s) for s in picked), "the validation file lacks a statement kind"
    return picked


@pytest.fixture(scope="module")
def pushed(liar_run):
    cfg, code = liar_run
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.pushed, result.blessing_failures
    return cfg, result.pushed_to


def _claim_records(cfg):
    """statement -> the claim-neighbour record the run's ClaimNeighbours wrote for the eval split."""
    import glob

    import tensorflow as tf

    pattern = os.path.join(local_paths(cfg).root, "pipeline_root", "ClaimNeighbours", "enriched", "*",
                           "Split-eval", "*.gz")
    files = glob.glob(pattern)
    assert files, pattern
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return dict(zip(raw_examples.string_column(records, "statement"),
                    raw_examples.string_column(records, cfg.claim_neighbours.column)))


def _blank_row(cfg, statement):
    return dict({name: "" for name in features.serving_feature_dtypes(cfg)},
                **{browser_extension.text_feature(cfg): statement})


def test_extension_scores_equal_the_saved_model(pushed, tmp_path, record_property):
    cfg, model_dir = pushed
    statements = _pick_statements(_validation_lines(cfg))
    extension = browser_extension.build(cfg, str(tmp_path / "extension"))
    with open(os.path.join(extension, "model", "extension_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["model_version"] == os.path.basename(model_dir) and config["ascii_lowercase"] is True

    result = drive_extension(extension, statements, tmp_path)
    expected = runtime.saved_model(model_dir, [_blank_row(cfg, s) for s in statements]).outputs
    assert expected.shape == (len(statements), len(cfg.label.classes))
    np.testing.assert_allclose(result["selection"]["raw"], expected[0], atol=TOLERANCE)
    # The page path scores the claim sentences of each paragraph (extension/claims.js).
    scored = [v["statement"] for v in result["verdicts"]]
    assert len(scored) >= len(statements) // 2, scored
    page = runtime.saved_model(model_dir, [_blank_row(cfg, s) for s in scored]).outputs
    np.testing.assert_allclose([v["raw"] for v in result["verdicts"]], page, atol=TOLERANCE)
    latency = result["latency"]
    record_property("extension_median_ms_per_statement", latency["median_ms"])
    print(f"\nextension latency per statement: median {latency['median_ms']:.2f} ms, "
          f"mean {latency['mean_ms']:.2f} ms (target {LATENCY_TARGET_MS} ms)")


def test_tfjs_and_tflite_equal_the_saved_model_on_validation_rows(pushed):
    cfg, model_dir = pushed
    with open(liar_file("train.tsv"), encoding="utf-8") as f:
        # A statement of the training sample is a training row to serving_default (out-of-fold
        # speaker counts); the edge has no row ids and always uses the full training counts.
        trained_on = {line.split("\t")[2] for _, line in zip(range(TRAIN_ROWS), f)}
    inputs = list(features.serving_feature_dtypes(cfg))
    # the column the pipeline adds: the run's real record for its eval sample, missing beyond it
    records = _claim_records(cfg)
    lines = [dict(line, **{cfg.claim_neighbours.column: records.get(line["statement"], "")})
             for line in _validation_lines(cfg)]
    rows = [{name: line[name] for name in inputs} for line in lines if line["statement"] not in trained_on][:200]
    assert len(rows) == 200 and sum(bool(r[cfg.claim_neighbours.column]) for r in rows) >= 100
    reference = runtime.saved_model(model_dir, rows).outputs
    assert reference.shape == (200, len(cfg.label.classes))
    for run in (runtime.tfjs, runtime.tflite):
        got = run(model_dir, rows).outputs
        worst = int(np.argmax(np.abs(got - reference).max(axis=1)))
        assert np.abs(got[worst] - reference[worst]).max() <= TOLERANCE, (
            f"{run.__name__}: row {worst} {rows[worst]}: {got[worst]} vs SavedModel {reference[worst]}")
