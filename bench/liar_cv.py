"""LIAR model selection by K-fold cross-validation on the training file only.

Why: the validation file is what docs/liar.md reports, so no choice may be made on
it; and one dev split of a thousand statements is too noisy to choose with (its
binomial standard error is about 0.015, the size of the differences in question,
and two such splits have disagreed on whether the speaker metadata helps at all).
Here every training statement is scored once, by a model that did not see it:
fold f holds the statements whose MD5 % K == f, the rest train.

Per fold, the real pipeline runs once (``python -m pipeline run``: TsvExampleGen,
Transform, ...) on that split; then every variant is trained on the fold's
Transform output with ``bench/trainer_sweep.py``'s ``run_variant`` (the Trainer's
own ``train``) for each seed, and scored by the ErrorAnalysis component's figures.
Each fold's model trains for the epochs the config gives the full training file
(``epoch_matched``). Prints, per variant, the mean over folds of six-way accuracy, macro-F1, binary
accuracy and binary accuracy from the statement alone (each fold's figure is the
mean over seeds), and the binary accuracy per fold::

    LIAR_DIR=/path/to/liar .venv/bin/python bench/liar_cv.py --work_dir /tmp/liar_cv \\
        --variant shipped= --variant old="trainer.dropout=0.3;trainer.weight_averaging=0"

A variant is ``name=override;override`` (``--set`` syntax). ``--config`` (default
``configs/liar.yaml``) is the file the folds' pipelines and the variants start
from, e.g. ``configs/liar-binary.yaml``, or a variant file that ``extends`` it
with fewer model features. A fold whose pipeline root already holds a Transform
output is not run again (``--work_dir`` reuse): a config whose Transform differs
(features added, a prior's smoothing) needs its own work dir.
About 2 minutes per fold for the pipeline, then about 12 s per training.
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, REPO)
ENV = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")

from trainer_sweep import FIGURES, _parse_variant, binary_figure, run_variant  # noqa: E402

from common.loader import load_config  # noqa: E402
from trainer.claim_neighbours import statement_folds  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "liar.yaml")


def write_fold(source: str, fold: int, folds: int, directory: str) -> float:
    """train.tsv and valid.tsv of ``directory``: the statements with MD5 % folds == fold are
    valid. Returns the share of the source's rows that train."""
    os.makedirs(directory, exist_ok=True)
    with open(source, encoding="utf-8") as f:
        lines = f.readlines()
    held = statement_folds([line.split("\t")[2] for line in lines], folds) == fold
    for name, keep in (("train.tsv", ~held), ("valid.tsv", held)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as out:
            out.writelines(line for line, k in zip(lines, keep) if k)
    return float(1.0 - held.mean())


def epoch_matched(config: str, overrides: Sequence[str], train_share: float) -> List[str]:
    """``overrides`` plus the training budget that gives a fold's model the epochs the
    full training file gets: ``trainer.train_steps`` x ``train_share``, and a weight-average
    momentum m ** (1 / train_share) that averages over the same share of an epoch.

    Why: the model overfits within a few epochs (docs/liar.md, "Model selection"), so a fold
    trained for the full file's step count on 80 % of its rows would be judged one
    epoch further on than the model the config actually ships."""
    trainer = load_config(config, overrides, require_data=False).trainer
    matched = [f"trainer.train_steps={max(1, round(trainer.train_steps * train_share))}"]
    if trainer.weight_averaging:
        matched.append(f"trainer.weight_averaging={trainer.weight_averaging ** (1 / train_share):.6f}")
    return [*overrides, *matched]


def data_overrides(fold_dir: str) -> List[str]:
    return [f"data.path={os.path.join(fold_dir, 'data')}", "data.path_env=''"]


def run_fold_pipeline(fold_dir: str, config: str, extra: Sequence[str] = ()) -> str:
    """The fold's pipeline root, after one pipeline run unless it already holds a Transform output
    (``extra``: more overrides for that run)."""
    name = load_config(config, data_overrides(fold_dir), require_data=False).name
    root = os.path.join(fold_dir, "runs", name, "pipeline_root")
    if glob.glob(os.path.join(root, "Transform", "transform_graph", "*")):
        return root
    args = [sys.executable, "-m", "pipeline", "run", "--config", config, "--no-tune"]
    for override in data_overrides(fold_dir) + [f"run_dir={fold_dir}/runs", f"serving.push_dir={fold_dir}/serving",
                                                "trainer.ensemble_size=1", *extra]:
        args += ["--set", override]
    with open(os.path.join(fold_dir, "pipeline.log"), "w") as log:
        code = subprocess.run(args, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"fold pipeline failed (exit {code}): see {fold_dir}/pipeline.log")
    return root


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    values = list(values)
    return None if None in values else statistics.mean(values)


def _cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--variant", action="append", required=True, help="name=override;override")
    parser.add_argument("--config", default=CONFIG, help="the config file folds and variants start from")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="42,1,2")
    args = parser.parse_args(argv)
    liar_dir = os.environ.get("LIAR_DIR") or os.path.join(REPO, "..", "shared", "datasets", "liar")
    source = os.path.join(liar_dir, "train.tsv")
    if not os.path.exists(source):
        raise SystemExit(f"{source}: LIAR's training file not found (set LIAR_DIR)")
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [_parse_variant(v) for v in args.variant]
    per_fold: Dict[str, List[Dict[str, float]]] = {name: [] for name, _ in variants}
    for fold in range(args.folds):
        fold_dir = os.path.join(args.work_dir, f"fold_{fold}")
        train_share = write_fold(source, fold, args.folds, os.path.join(fold_dir, "data"))
        start = time.time()
        root = run_fold_pipeline(fold_dir, args.config)
        print(f"fold {fold}: pipeline ready in {time.time() - start:.0f}s", flush=True)
        for name, overrides in variants:
            variant = epoch_matched(args.config, [*data_overrides(fold_dir), *overrides], train_share)
            result = run_variant(args.config, variant, seeds, root)
            figures = {f: _mean(s[f] for s in result["per_seed"]) for f in FIGURES}
            figures["averaged_binary"] = binary_figure(result["averaged"])
            per_fold[name].append(figures)
            print(f"  {name:<20}" + "".join(f" {f}={_cell(figures[f])}" for f in (*FIGURES, "averaged_binary")),
                  flush=True)
    print(f"\n{args.folds}-fold CV on {source} (seeds {args.seeds}; mean over folds of the mean over seeds)")
    print(f"{'variant':<20}" + "".join(f"{f:>17}" for f in (*FIGURES, "averaged_binary")) + "   binary per fold")
    for name, folds in per_fold.items():
        means = [_mean(f[k] for f in folds) for k in (*FIGURES, "averaged_binary")]
        print(f"{name:<20}" + "".join(f"{_cell(m):>17}" for m in means) + "   "
              + " ".join(f"{f['binary_accuracy']:.3f}" for f in folds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
