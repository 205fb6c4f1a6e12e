"""Evaluator: TFMA metrics, slices and the blessing thresholds, from the config."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import tensorflow_model_analysis as tfma
from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.fold_metrics import RATES, FoldedRate
from common.config import PipelineConfig, extra_slice_keys
from trainer import features

EVAL_SIGNATURE = "serving_tf_example"
LABEL_SIGNATURE = "transform_features"


def _overall(threshold: tfma.MetricThreshold) -> dict:
    """Thresholds gate the whole eval split; per-slice figures are for reading."""
    return {"per_slice_thresholds": [tfma.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]}


def _metrics_specs(cfg: PipelineConfig) -> List[tfma.MetricsSpec]:
    """The metrics, with fairness rates (FPR/FNR) when ``fairness_features`` are set:
    TFMA's own for binary models, the binary fold's for a multi-class label with
    ``positive_classes`` (components.fold_metrics says why)."""
    return [tfma.MetricsSpec(metrics=_metrics(cfg))]


def _folded_rates(cfg: PipelineConfig) -> List[tfma.MetricConfig]:
    if not (cfg.evaluation.fairness_features and cfg.label.positive_classes):
        return []
    positive = cfg.label.positive_class_ids
    return [tfma.MetricConfig(class_name=FoldedRate.__name__, module=FoldedRate.__module__,
                              config=json.dumps({"positive_class_ids": positive, "rate": rate, "name": rate}))
            for rate in RATES]


def _metrics(cfg: PipelineConfig) -> List[tfma.MetricConfig]:
    if cfg.num_classes > 2:
        accuracy = "SparseCategoricalAccuracy"
        return [tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name=accuracy, **_overall(_floor(cfg.evaluation.min_accuracy))),
                tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")] + _folded_rates(cfg)
    rates = ([tfma.MetricConfig(class_name="FPR"), tfma.MetricConfig(class_name="FNR")]
             if cfg.evaluation.fairness_features else [])
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.evaluation.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -cfg.evaluation.max_auc_regression}))
    return [
        tfma.MetricConfig(class_name="ExampleCount"),
        # 1,000 thresholds (TFMA's default is 10,000) and 100 calibration buckets per
        # slice: the same figures to 3 decimals, for a fraction of the Beam work.
        tfma.MetricConfig(class_name="AUC", config='{"num_thresholds": 1000}', **_overall(auc_threshold)),
        tfma.MetricConfig(class_name="BinaryAccuracy", **_overall(_floor(cfg.evaluation.min_accuracy))),
        tfma.MetricConfig(class_name="Precision"),
        tfma.MetricConfig(class_name="Recall"),
        tfma.MetricConfig(class_name="Calibration"),
        tfma.MetricConfig(class_name="MeanLabel"),
        tfma.MetricConfig(class_name="MeanPrediction"),
        tfma.MetricConfig(class_name="CalibrationPlot", config='{"num_buckets": 100}'),
    ] + rates


def _floor(value: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": value}))


def eval_config(cfg: PipelineConfig) -> tfma.EvalConfig:
    """Labels come from the model's own Transform graph, so raw examples suffice."""
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=EVAL_SIGNATURE,
            label_key=features.transformed_label_name(cfg),
            preprocessing_function_names=[LABEL_SIGNATURE])],
        slicing_specs=[tfma.SlicingSpec()] + [
            tfma.SlicingSpec(feature_keys=list(keys)) for keys in slice_keys(cfg)],
        metrics_specs=_metrics_specs(cfg))


def slice_keys(cfg: PipelineConfig) -> List[Tuple[str, ...]]:
    """Configured slices plus one per fairness feature, as TFMA feature keys: a raw
    feature by name, a kind's extra slice key by its transformed name (TFMA slices
    on the outputs of the transform_features preprocessing function too)."""
    extra = {key for f in cfg.features for key in extra_slice_keys(f)}
    wanted = list(cfg.evaluation.slices) + [(f,) for f in cfg.evaluation.fairness_features]
    keys: List[Tuple[str, ...]] = []
    for spec in wanted:
        key = tuple(features.transformed_name(k) if k in extra else k for k in spec)
        if key not in keys:
            keys.append(key)
    return keys


def build_baseline_model_resolver() -> tfx.dsl.Resolver:
    """The latest blessed model, for the no-regression (change) threshold."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")


def without_self_baseline(input_dict: Dict[str, List[types.Artifact]]) -> Dict[str, List[types.Artifact]]:
    """Drops the baseline when it is the candidate itself.

    That happens on every rerun whose Trainer was cached: the candidate is by
    then the latest blessed model. Comparing a model with itself cannot fail
    a change threshold, so the evaluation is the same as a first run's.
    """
    baseline = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    candidate = input_dict.get(standard_component_specs.MODEL_KEY) or []
    if baseline and candidate and baseline[0].id == candidate[0].id:
        return {k: v for k, v in input_dict.items() if k != standard_component_specs.BASELINE_MODEL_KEY}
    return input_dict


class SelfBaselineSkippingExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor, which evaluates a model once, not twice, against itself."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        super().Do(without_self_baseline(input_dict), output_dict, exec_properties)


class Evaluator(tfx.components.Evaluator):
    """TFX's Evaluator (spec, driver, outputs) with the self-baseline-skipping executor."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(SelfBaselineSkippingExecutor)


def build_evaluator(cfg: PipelineConfig, examples, model, baseline_model) -> Evaluator:
    return Evaluator(
        examples=examples, model=model, baseline_model=baseline_model,
        eval_config=eval_config(cfg)).with_id("Evaluator")
