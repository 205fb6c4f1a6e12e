"""The end-of-run summary: metrics beside baselines, blessing and why, the push."""
from __future__ import annotations

import os

from common.config import PipelineConfig
from pipeline.figures import figure
from pipeline.results import RunResult, collect
from pipeline.run_paths import config_arg, local_paths

_SHOWN_METRICS = ("auc", "binary_accuracy", "sparse_categorical_accuracy", "precision", "recall",
                  "calibration", "mean_label", "mean_prediction", "example_count")


def summary_text(cfg: PipelineConfig, result: RunResult = None) -> str:
    result = result or collect(local_paths(cfg).metadata, cfg.pipeline_name)
    lines = data_lines(result) + ["Evaluation (eval split):"]
    shown = [(name, figure(result.metrics.get(name)), "") for name in _SHOWN_METRICS]
    majority = result.baselines.get("majority_class") or {}
    rule = result.baselines.get("one_feature_rule") or {}
    shown += [("baseline: majority class", figure(majority.get("accuracy")), " (accuracy)"),
              ("baseline: best one-feature", figure(rule.get("accuracy")),
               f" (accuracy, rule on {rule.get('feature', '?')})")]
    from components.evaluation import FLIP_RATE_METRIC  # TFMA: loaded only to report a run

    flip_limit = cfg.evaluation.max_flip_rate
    shown.append(("flip rate vs pushed model", figure(result.metrics.get(FLIP_RATE_METRIC)),
                  " (share of rows changing class; " + (f"max {flip_limit:g})" if flip_limit is not None
                                                        else "not gated: evaluation.max_flip_rate)")))
    lines += [f"  {name:<28} {value}{note}" for name, value, note in shown if value is not None]
    lines += error_analysis_lines(result)
    if result.model_blessed is not None:
        lines.append(blessing_line(result))
    if result.infra_blessed is not None:
        why = result.infra_reason or ("canary requests answered" if result.infra_blessed else "")
        lines.append(f"InfraValidator: {'BLESSED' if result.infra_blessed else 'NOT blessed'} ({why})")
    if result.pushed:
        lines += [f"Pushed to {result.pushed_to}",
                  "Serve it (TF Serving REST API on :8501):",
                  f"  python -m serving start --config {config_arg(cfg)}   "
                  "(or: make serve)",
                  f"  docker run -p 8501:8501 -v {os.path.dirname(result.pushed_to)}:/models/"
                  f"{cfg.serving.model_name} -e MODEL_NAME={cfg.serving.model_name} "
                  f"{cfg.serving.tf_serving_image}:{cfg.serving.tf_serving_tag}"]
    else:
        lines.append(f"Not pushed: the model serving from {cfg.push_dir} (if any) is unchanged.")
    return "\n".join(lines)


def blessing_line(result: RunResult) -> str:
    """The Evaluator's verdict and every rule that blocked the model (a TFMA
    threshold, the baseline gate), or the baseline comparison it passed."""
    if result.model_blessed:
        why = "; ".join(["all thresholds met"] + ([result.baseline_gate] if result.baseline_gate else []))
        return f"Evaluator: BLESSED ({why})"
    return f"Evaluator: NOT blessed ({'; '.join(result.blessing_failures) or 'no reason recorded'})"


def data_lines(result: RunResult) -> list:
    """Which spans trained and evaluated (with versions), and what the data gate compared."""
    lines = []
    spans = result.spans
    if spans:
        def label(span):
            version = spans["versions"].get(str(span), {}).get("version", -1)
            return f"{span}" + (f" (version {version})" if version >= 0 else "")
        ingested = f"; this run ingested span {spans['ingested']}" if "ingested" in spans else ""
        lines.append(f"Data: train on spans {', '.join(label(s) for s in spans['train'])}, "
                     f"evaluate on span {label(spans['eval'])}{ingested}")
    if result.drift_checked is not None:
        lines.append("Data gate: " + (result.gate_notes[0] if result.gate_notes else "passed"))
        lines += [f"  {note}" for note in result.gate_notes[1:]]
    return lines


def error_analysis_lines(result: RunResult) -> list:
    """The model beside the text baselines, per split: accuracy, macro-F1, binary accuracy."""
    rows = []
    for split, figures in sorted(result.analysis.get("splits", {}).items()):
        for variant, f in figures.items():
            rows.append((split, f"model, {variant.replace('_', ' ')}", f))
        for name, f in result.text_baselines.get(split, {}).items():
            rows.append((split, f"baseline: {name.replace('_', ' ')}", f))
    if not rows:
        return []
    cell = lambda f, k: figure(f.get(k)) or "     -"  # noqa: E731
    lines = [f"Error analysis: {'split':<6} {'scorer':<38} {'accuracy':>8} {'macro-F1':>8} {'binary':>8}"]
    for split, name, f in rows:
        lines.append(f"                {split:<6} {name:<38} {cell(f, 'accuracy'):>8} "
                     f"{cell(f, 'macro_f1'):>8} {cell(f, 'binary_accuracy'):>8}")
    return lines
