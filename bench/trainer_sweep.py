"""Trainer variants on a finished run's Transform output, several seeds each.

Why: one training of the LIAR model moves binary accuracy by about +-0.01
from seed to seed, more than most config changes, and a whole pipeline run
per variant costs minutes. This reuses the Transform output of one run and
trains each variant with ``trainer.train`` (the Trainer's own code) for every
seed, so a change is judged by its mean over seeds, in about 10 s per training.
Scores come from ``components.error_analysis.analyse``, the ErrorAnalysis
component's figures. ``bench/liar_cv.py`` runs it on every fold of a
cross-validation of the training file.

Run it on a run whose eval split is carved from the training file (a fold of
``bench/liar_cv.py``), never on the split docs/liar.md reports::

    .venv/bin/python bench/trainer_sweep.py --config configs/liar.yaml \\
        --pipeline_root /tmp/liar_cv/fold_0/runs/liar/pipeline_root \\
        --set data.path=/tmp/liar_cv/fold_0/data --set "data.path_env=''" \\
        --variant base= --variant dropout_0.3=trainer.dropout=0.3 --seeds 42,1,2,3,4

A variant is ``name=override;override`` (``--set`` syntax); every variant also
gets the run's data overrides from ``--set``. Prints per variant the mean and
standard deviation over seeds, and the scores of the seeds' averaged outputs.
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
import warnings
from typing import Dict, List, Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.simplefilter("ignore")  # Keras and TFX deprecation notes would bury the table
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from common.config import PipelineConfig  # noqa: E402
from common.loader import load_config  # noqa: E402
from components.error_analysis import analyse  # noqa: E402
from trainer import data, feature_dropout, features  # noqa: E402
from trainer.train import model_inputs_for, train  # noqa: E402

# kept_only_binary: binary accuracy with only trainer.feature_dropout_keep (the statement),
# as the browser extension asks; binary_ece: expected calibration error of P(positive)
FIGURES = ("accuracy", "macro_f1", "binary_accuracy", "kept_only_binary", "binary_ece")


def latest_transform(pipeline_root: str) -> Tuple[str, str]:
    """(transform graph dir, transformed examples dir) of the newest Transform execution."""
    graphs = glob.glob(os.path.join(pipeline_root, "Transform", "transform_graph", "*"))
    if not graphs:
        raise SystemExit(f"{pipeline_root}: no Transform/transform_graph/<id> (is it a finished run's root?)")
    newest = max(graphs, key=lambda p: int(os.path.basename(p)))
    execution = os.path.basename(newest)
    return newest, os.path.join(pipeline_root, "Transform", "transformed_examples", execution)


def split_batches(cfg: PipelineConfig, tf_transform_output, examples_dir: str,
                  split: str = "eval") -> Tuple[List[dict], np.ndarray]:
    """A whole split of the transformed examples once (the eval split by default), as
    (feature batches, labels)."""
    ds = data.make_dataset([os.path.join(examples_dir, f"Split-{split}", "*")],
                           tf_transform_output.transformed_feature_spec(),
                           features.transformed_label_name(cfg), 256, seed=0, shuffle=False, repeat=False)
    batches, labels = [], []
    for x, y in ds:
        batches.append(x)
        labels.append(y.numpy().reshape(-1))
    return batches, np.concatenate(labels).astype(np.int64)


def kept_only(cfg: PipelineConfig, tf_transform_output, batches: List[dict]) -> List[dict]:
    """``batches`` as a request with only ``trainer.feature_dropout_keep`` (the statement)
    would reach the model: every other input set to what Transform makes of a missing value."""
    keys = feature_dropout.dropped_keys(cfg, model_inputs_for(cfg, tf_transform_output))
    missing = feature_dropout.missing_row(cfg, tf_transform_output)
    every_row = lambda batch: tf.ones([len(next(iter(batch.values())))], tf.bool)  # noqa: E731
    return [feature_dropout.blank_rows(batch, keys, missing, every_row(batch)) for batch in batches]


def binary_figure(figures: Dict[str, object]) -> float:
    """Binary accuracy: the fold's for a multi-class model, plain accuracy for a binary one."""
    return figures.get("binary_accuracy", figures["accuracy"])


def run_variant(config: str, overrides: Sequence[str], seeds: Sequence[int], pipeline_root: str
                ) -> Dict[str, object]:
    """Figures per seed and of the averaged outputs for one variant."""
    graph_dir, examples_dir = latest_transform(pipeline_root)
    tf_transform_output = tft.TFTransformOutput(graph_dir)
    per_seed, outputs = [], []
    batches = labels = reduced_batches = None
    for seed in seeds:
        cfg = load_config(config, [*overrides, f"trainer.seed={seed}"], require_data=False)
        if batches is None:  # the seed changes neither the eval rows nor the kept features
            batches, labels = split_batches(cfg, tf_transform_output, examples_dir)
            if cfg.trainer.feature_dropout_keep:
                reduced_batches = kept_only(cfg, tf_transform_output, batches)
        model = train(cfg, tf_transform_output, [os.path.join(examples_dir, "Split-train", "*")],
                      [os.path.join(examples_dir, "Split-eval", "*")])
        probabilities = np.concatenate([model.predict_on_batch(x) for x in batches])
        outputs.append(probabilities)
        figures = analyse(cfg, probabilities, labels)
        figures["binary_accuracy"] = binary_figure(figures)  # a two-class config has no fold
        figures["binary_ece"] = figures.get("calibration", {}).get("expected_calibration_error")
        figures["kept_only_binary"] = None
        if reduced_batches:
            reduced = np.concatenate([model.predict_on_batch(x) for x in reduced_batches])
            figures["kept_only_binary"] = binary_figure(analyse(cfg, reduced, labels))
        per_seed.append(figures)
        tf.keras.backend.clear_session()
    return {"per_seed": per_seed, "averaged": analyse(cfg, np.mean(outputs, axis=0), labels)}


def _parse_variant(text: str) -> Tuple[str, List[str]]:
    name, _, overrides = text.partition("=")
    if not name:
        raise SystemExit(f"--variant {text!r}: expected name=override;override")
    return name, [o for o in overrides.split(";") if o]


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--pipeline_root", required=True, help="a finished run's pipeline root")
    parser.add_argument("--variant", action="append", required=True, help="name=override;override")
    parser.add_argument("--set", action="append", default=[], help="override for every variant")
    parser.add_argument("--seeds", default="42,1,2,3,4")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'variant':<22}" + "".join(f"{f:>22}" for f in FIGURES) + f"{'averaged binary':>17}{'s':>6}")
    for name, overrides in map(_parse_variant, args.variant):
        start = time.time()
        result = run_variant(args.config, [*args.set, *overrides], seeds, args.pipeline_root)
        cells = []
        for figure in FIGURES:
            values = [s.get(figure) for s in result["per_seed"]]
            if None in values:
                cells.append(f"{'-':>22}")
                continue
            cells.append(f"{statistics.mean(values):>14.4f} +-{statistics.pstdev(values):.4f}")
        averaged = binary_figure(result["averaged"])
        print(f"{name:<22}" + "".join(cells) + f"{averaged:>17.4f}{time.time() - start:>6.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
