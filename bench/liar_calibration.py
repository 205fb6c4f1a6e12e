"""Out-of-fold statement-only scores of the shipped LIAR recipe, for the extension's lean.

Why: the extension's calibration map and "not sure" threshold must be fitted on
scores of statements the model did not train on, from the training file only
(k-fold; the validation file is only reported on), and on what the extension
sees: the statement alone, every other input missing. Per fold (statements
with MD5 % K == fold held out, as ``bench/liar_cv.py``), the real pipeline
runs once for the fold's Transform output, then the config's model (its
ensemble, epoch-matched to the fold's size) is trained with the Trainer's own
``train`` and scores the held-out statements with the metadata blanked
(``trainer_sweep.kept_only``). A last run trains on the whole training file and
scores the validation file the same way, for the reported curve.

    LIAR_DIR=/path/to/liar .venv/bin/python bench/liar_calibration.py --work_dir /tmp/liar_cal --folds 5
    .venv/bin/python -m edge.calibration --scores /tmp/liar_cal/oof.json \\
        --shipped_in_sample /tmp/liar_cal/shipped_in_sample.json \\
        --validation /tmp/liar_cal/valid.json --precision 0.7 --bound 0.95 --out build/liar_lean.json

Writes ``oof.json`` ({p, positive, fold, in_sample_p: each fold model's scores of its own
training rows}; rewritten after each fold), ``valid.json`` ({p, positive}) and
``shipped_in_sample.json`` ({in_sample_p}: the whole-file model's scores of its training
rows) to ``--work_dir``; a fold whose work dir already
holds a Transform output is not run again. ``--validation folds`` scores the
validation file with each fold's model instead (``valid_folds.json``, no extra
pipeline run), and ``--run_folds N`` stops after N folds. The pipeline's
ClaimNeighbours step dominates: about 2 minutes per run on an idle machine, 21
on a loaded one.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Dict, List, Optional, Sequence

# The fold pipelines run for their Transform output only (the model is trained again here): a
# token training keeps their own Trainer, Evaluator and analyses cheap.
PIPELINE_ONLY = ["trainer.train_steps=5", "trainer.weight_averaging=0"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Before TensorFlow is imported: without it `tf.keras` is Keras 3, which is not the Trainer's
# Keras (the folds then train another model and the full-file run fails on the prior's shape).
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from liar_cv import CONFIG, REPO, data_overrides, epoch_matched, run_fold_pipeline, write_fold  # noqa: E402
from trainer_sweep import kept_only, latest_transform, split_batches  # noqa: E402

from common.config import PipelineConfig  # noqa: E402
from common.loader import load_config  # noqa: E402
from components import classification_metrics  # noqa: E402
from edge.browser_extension import positive_indices  # noqa: E402
from edge.browser_extension import text_feature as browser_text_feature  # noqa: E402
from trainer import features  # noqa: E402
from trainer.train import train  # noqa: E402


def positive_probability(cfg: PipelineConfig, probabilities: np.ndarray) -> np.ndarray:
    """P(positive) from the model's outputs: the positive classes' sum, or the binary output."""
    if probabilities.ndim == 1 or probabilities.shape[1] == 1:
        return probabilities.reshape(-1)
    if cfg.label.is_binary_fold or probabilities.shape[1] == 2:
        return probabilities[:, 1]
    return probabilities[:, cfg.label.positive_class_ids].sum(axis=1)


def raw_statements(cfg: PipelineConfig, transform_output, statements: Sequence[str]) -> Dict[str, tf.Tensor]:
    """Transformed features of ``statements`` with every other raw feature missing, as a page
    sends them (then blanked like ``kept_only``, so inputs derived from several features are
    missing too)."""
    n = len(statements)
    text = browser_text_feature(cfg)
    raw = {}
    for column, dtype in features.serving_feature_dtypes(cfg).items():
        if column == text:
            raw[column] = tf.SparseTensor(tf.constant([[i, 0] for i in range(n)], tf.int64),
                                          tf.constant(list(statements)), tf.constant([n, 1], tf.int64))
        else:
            raw[column] = tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], features.tf_dtype(dtype)),
                                          tf.constant([n, 1], tf.int64))
    return dict(transform_output.transform_features_layer()(raw))


def validation_rows(cfg: PipelineConfig, valid: str) -> Dict[str, List]:
    """Statements and positive flags of the validation file (LIAR's TSV: label, statement)."""
    names = [c.name for c in cfg.data.columns]
    label_at, text_at = names.index(cfg.label.column), names.index(browser_text_feature(cfg))
    statements, labels = [], []
    with open(valid, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            statements.append(fields[text_at])
            labels.append(fields[label_at])
    positive = [int(label in cfg.label.positive_classes) for label in labels]
    return {"statements": statements, "positive": positive}


def statement_only_scores(config: str, overrides: Sequence[str], pipeline_root: str,
                          valid: Optional[str] = None) -> Dict[str, List]:
    """Trains the config's model on the run's train split; P(positive) of its eval split from
    the statement alone, and whether each row is positive; ``train_p``: its own training rows
    scored the same way (in-sample, for ``edge.calibration``'s transfer to the shipped model);
    with ``valid``, also the validation file's statements scored by the same model (``valid_p``)."""
    graph_dir, examples_dir = latest_transform(pipeline_root)
    transform_output = tft.TFTransformOutput(graph_dir)
    cfg = load_config(config, overrides, require_data=False)
    batches, labels = split_batches(cfg, transform_output, examples_dir)
    model = train(cfg, transform_output, [os.path.join(examples_dir, "Split-train", "*")],
                  [os.path.join(examples_dir, "Split-eval", "*")])

    def scored(split_batches):
        statement_only = kept_only(cfg, transform_output, split_batches)
        probabilities = np.concatenate([model.predict_on_batch(x) for x in statement_only])
        return positive_probability(cfg, probabilities).round(6).tolist()

    positive = positive_indices(cfg)
    out = {"p": scored(batches), "positive": classification_metrics.fold(labels, positive).tolist(),
           "train_p": scored(split_batches(cfg, transform_output, examples_dir, split="train")[0])}
    if valid:
        rows = validation_rows(cfg, valid)
        chunks = [raw_statements(cfg, transform_output, rows["statements"][start:start + 256])
                  for start in range(0, len(rows["statements"]), 256)]
        valid_p = np.concatenate([model.predict_on_batch(x) for x in kept_only(cfg, transform_output, chunks)])
        out["valid_p"] = positive_probability(cfg, valid_p).round(6).tolist()
        out["valid_positive"] = rows["positive"]
    tf.keras.backend.clear_session()
    return out


def out_of_fold(config: str, source: str, work_dir: str, folds: int, run_folds: int,
                valid: Optional[str]) -> None:
    """oof.json: every training statement scored by the fold model that did not train on it
    (the first ``run_folds`` folds); with ``valid``, valid_folds.json: the validation file
    scored by each fold model, the same way."""
    oof: Dict[str, List] = {"p": [], "positive": [], "fold": [], "in_sample_p": []}
    held: Dict[str, List] = {"p_by_fold": [], "positive": []}
    for fold in range(run_folds):
        fold_dir = os.path.join(work_dir, f"fold_{fold}")
        share = write_fold(source, fold, folds, os.path.join(fold_dir, "data"))
        cached = os.path.join(fold_dir, "scores.json")  # a fold scored before is not trained again
        if os.path.isfile(cached):
            with open(cached, encoding="utf-8") as f:
                scores = json.load(f)
        if not os.path.isfile(cached) or (valid and "valid_p" not in scores) or "train_p" not in scores:
            root = run_fold_pipeline(fold_dir, config, PIPELINE_ONLY)
            scores = statement_only_scores(config, epoch_matched(config, data_overrides(fold_dir), share), root,
                                           valid)
            with open(cached, "w", encoding="utf-8") as f:
                json.dump(scores, f)
        if valid:
            held["p_by_fold"].append(scores["valid_p"])
            held["positive"] = scores["valid_positive"]
            with open(os.path.join(work_dir, "valid_folds.json"), "w", encoding="utf-8") as f:
                json.dump(held, f)
        oof["p"] += scores["p"]
        oof["positive"] += scores["positive"]
        oof["fold"] += [fold] * len(scores["p"])
        oof["in_sample_p"] += scores["train_p"]
        print(f"fold {fold}: {len(scores['p'])} held-out statements scored", flush=True)
        with open(os.path.join(work_dir, "oof.json"), "w", encoding="utf-8") as f:
            json.dump(oof, f)  # after every fold: the folds done so far are usable


def validation(config: str, source: str, valid: str, work_dir: str) -> None:
    """valid.json: the validation file scored by the recipe trained on the whole training file."""
    full_dir = os.path.join(work_dir, "full")
    os.makedirs(os.path.join(full_dir, "data"), exist_ok=True)
    shutil.copy(source, os.path.join(full_dir, "data", "train.tsv"))
    shutil.copy(valid, os.path.join(full_dir, "data", "valid.tsv"))
    root = run_fold_pipeline(full_dir, config, PIPELINE_ONLY)
    scores = statement_only_scores(config, data_overrides(full_dir), root)
    with open(os.path.join(work_dir, "shipped_in_sample.json"), "w", encoding="utf-8") as f:
        json.dump({"in_sample_p": scores.pop("train_p")}, f)  # the shipped recipe on its own training rows
    with open(os.path.join(work_dir, "valid.json"), "w", encoding="utf-8") as f:
        json.dump(scores, f)
    print(f"validation: {len(scores['p'])} statements scored", flush=True)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--run_folds", type=int, help="stop after this many folds (default: all)")
    parser.add_argument("--validation", choices=["full", "folds", "none"], default="full",
                        help="score the validation file with a model trained on the whole training "
                             "file (full), with each fold's model (folds: valid_folds.json), or not")
    args = parser.parse_args(argv)
    liar_dir = os.environ.get("LIAR_DIR") or os.path.join(REPO, "..", "shared", "datasets", "liar")
    source, valid = (os.path.join(liar_dir, name) for name in ("train.tsv", "valid.tsv"))
    if not os.path.exists(source):
        raise SystemExit(f"{source}: LIAR's training file not found (set LIAR_DIR)")
    out_of_fold(args.config, source, args.work_dir, args.folds, args.run_folds or args.folds,
                valid if args.validation == "folds" else None)
    if args.validation == "full":
        validation(args.config, source, valid, args.work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
