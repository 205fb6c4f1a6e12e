"""Evaluator: TFMA metrics, slices and the blessing thresholds, from the config,
plus the baseline gate (components.baseline_gate) on the blessing."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import proto_utils

from common.config import PipelineConfig, extra_slice_keys
from common.serving_contract import TF_EXAMPLE_SIGNATURE, TRANSFORM_SIGNATURE
from components import baseline_gate
from components.baselines import BaselineMetrics
from components.fold_metrics import RATES, FoldedRate
from components.pusher import PushBlessing
from components.tfx_api import tfx
from trainer import features


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


def accuracy_metric(cfg: PipelineConfig) -> str:
    """TFMA's name of the accuracy the floor and the baseline gate read."""
    return "sparse_categorical_accuracy" if cfg.num_classes > 2 else "binary_accuracy"


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
        _flip_rate(cfg),
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


# TFMA's symmetric flip rate of the candidate against the baseline model: a diff metric
# (TFMA names it "<name>_diff" in the loaded result), computed only when there is a baseline.
FLIP_RATE_CLASS = "SymmetricFlipRate"
FLIP_RATE_METRIC = "symmetric_flip_rate_diff"


def _flip_rate(cfg: PipelineConfig) -> tfma.MetricConfig:
    """Rows whose class (probability above 0.5) differs between the candidate and the baseline.

    The bound is a change threshold: TFMA keys a model-comparison metric as a diff, so a
    value threshold would never find it; TFX rubber-stamps change thresholds on a first run."""
    limit = cfg.evaluation.max_flip_rate
    threshold = {} if limit is None else _overall(tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.LOWER_IS_BETTER, absolute={"value": limit})))
    return tfma.MetricConfig(class_name=FLIP_RATE_CLASS, config='{"threshold": 0.5}', **threshold)


def without_comparisons(eval_config_json: str) -> str:
    """The eval config without the flip rate: with no baseline there is nothing to flip from
    (TFMA would compare the candidate with itself and report 0)."""
    config = proto_utils.json_to_proto(eval_config_json, tfma.EvalConfig())
    for spec in config.metrics_specs:
        kept = [m for m in spec.metrics if m.class_name != FLIP_RATE_CLASS]
        del spec.metrics[:]
        spec.metrics.extend(kept)
    return proto_utils.proto_to_json(config)


def _floor(value: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": value}))


def eval_config(cfg: PipelineConfig) -> tfma.EvalConfig:
    """Labels come from the model's own Transform graph, so raw examples suffice."""
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=TF_EXAMPLE_SIGNATURE,
            label_key=features.transformed_label_name(cfg),
            preprocessing_function_names=[TRANSFORM_SIGNATURE])],
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
    """The latest PUSHED model, for the no-regression (change) threshold and the flip rate.

    TFX's LatestBlessedModelStrategy over the Pusher's ``push_blessing`` (a
    ModelBlessing subtype only a completed push writes, components.pusher), not the
    Evaluator's blessing: a run killed between the two left a blessed model that was
    never pushed, and its rerun then took that model as its baseline, compared the
    candidate with itself and evaluated differently from an uninterrupted run.
    (Kubeflow's v2 compiler queries every ModelBlessing for this strategy; there the
    baseline is the latest blessed model, pushed or not.)"""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=PushBlessing),
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


BASELINES_KEY = "baselines"
ACCURACY_METRIC_KEY = "accuracy_metric"
MIN_MARGIN_KEY = "min_margin_over_baselines"


class GatedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """TFX's Evaluator spec plus the run's trivial baselines and the gate's settings."""
    PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                  ACCURACY_METRIC_KEY: ExecutionParameter(type=str),
                  MIN_MARGIN_KEY: ExecutionParameter(type=float)}
    INPUTS = {**standard_component_specs.EvaluatorSpec.INPUTS,
              BASELINES_KEY: ChannelParameter(type=BaselineMetrics)}


class GatedEvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor that evaluates a model once, not twice, against
    itself, then withdraws the blessing of a model that does not beat the
    run's trivial baselines (components.baseline_gate says why it is here)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        input_dict = without_self_baseline(input_dict)
        if not input_dict.get(standard_component_specs.BASELINE_MODEL_KEY):
            exec_properties = {**exec_properties, standard_component_specs.EVAL_CONFIG_KEY: without_comparisons(
                exec_properties[standard_component_specs.EVAL_CONFIG_KEY])}
        super().Do(input_dict, output_dict, exec_properties)
        metric = exec_properties[ACCURACY_METRIC_KEY]
        evaluation = artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY])
        result = baseline_gate.verdict(
            metric, overall_metrics(evaluation).get(metric),
            baseline_gate.read_baselines(artifact_utils.get_single_instance(input_dict[BASELINES_KEY])),
            float(exec_properties[MIN_MARGIN_KEY]))
        baseline_gate.apply(
            artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY]), result)


class Evaluator(base_beam_component.BaseBeamComponent):
    """TFX's Evaluator (its executor, outputs and blessing) with the baseline gate.

    A sibling of ``tfx.components.Evaluator``, not a subclass: that class's
    constructor builds TFX's own spec, which has no input for the baselines.
    """
    SPEC_CLASS = GatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(GatedEvaluatorExecutor)

    def __init__(self, examples, model, baseline_model, baselines, eval_config: tfma.EvalConfig,
                 accuracy_metric_name: str, min_margin_over_baselines: float) -> None:
        super().__init__(spec=GatedEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model, baselines=baselines,
            eval_config=eval_config, accuracy_metric=accuracy_metric_name,
            min_margin_over_baselines=min_margin_over_baselines,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))


def build_evaluator(cfg: PipelineConfig, examples, model, baseline_model, baselines) -> Evaluator:
    return Evaluator(
        examples=examples, model=model, baseline_model=baseline_model, baselines=baselines,
        eval_config=eval_config(cfg), accuracy_metric_name=accuracy_metric(cfg),
        min_margin_over_baselines=cfg.evaluation.min_margin_over_baselines).with_id("Evaluator")


def load_candidate_result(evaluation_uri: str) -> "tfma.EvalResult":
    """TFMA's result for the candidate model.

    Why not ``tfma.load_eval_result(uri)``: when the Evaluator compared the candidate
    with a baseline model, that call logs a warning per plot ("Fail to find plots for
    model name: None") and leaves the plots out; naming the candidate avoids both.
    """
    from tensorflow_model_analysis.writers import eval_config_writer

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    specs = list(config.model_specs) if config is not None else []
    candidates = [spec.name for spec in specs if not spec.is_baseline]
    name = candidates[0] if len(specs) > 1 and len(candidates) == 1 else None
    return tfma.load_eval_result(evaluation_uri, model_name=name)


def overall_metrics(evaluation_uri: str) -> Dict[str, object]:
    """The candidate model's metrics on the whole eval split, as TFMA wrote them:
    numbers, or text where TFMA's JSON has it (NaN becomes "NaN")."""
    eval_result = load_candidate_result(evaluation_uri)
    for slice_key, metrics in eval_result.slicing_metrics:
        if slice_key == ():
            values = next(iter(metrics.values()))
            values = values.get("", values)
            return {name: v["doubleValue"] for name, v in values.items() if "doubleValue" in v}
    return {}
