"""What the data gate checks beyond ExampleValidator, on statistics protos alone.

TFX 1.16's ExampleValidator calls ``tfdv.validate_statistics`` without
previous statistics, so the schema's drift comparators never run, and an
empty split raises no anomaly at all (TFDV only sets ``data_missing``). Here,
per split:

* an empty split is a problem of its own (nothing else is said about it);
* ``tfdv.validate_statistics`` runs with the config's dataset constraints
  (``validation.min_examples``, the example-count ratio) written into the
  schema's ``dataset_constraints`` and, when the pipeline has accepted data
  before, that data's statistics as ``previous_statistics``: the drift
  comparators (L-infinity for categorical, Jensen-Shannon for numeric
  features) and the count ratio then apply. Only the anomalies that
  ExampleValidator cannot report are taken from this call, so nothing is said
  twice.

No artifacts and no I/O: the gate component (components.anomalies_gate) reads
the protos, and unit tests feed synthetic ones.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

_Type = anomalies_pb2.AnomalyInfo.Type
DRIFT_TYPES = {_Type.COMPARATOR_L_INFTY_HIGH, _Type.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
               _Type.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH}
COMPARISON_MISSING = {_Type.COMPARATOR_CONTROL_DATA_MISSING, _Type.COMPARATOR_TREATMENT_DATA_MISSING}
MEASURES = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
            anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence",
            anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
                "normalized absolute difference"}
_LARGEST_CHANGE = re.compile(r"The feature value with maximum difference is: (.*)$")


@dataclass(frozen=True)
class Thresholds:
    """The config's ``validation`` section, as the gate receives it."""
    min_examples: Mapping[str, int] = field(default_factory=dict)
    min_count_ratio: float = 0.0
    max_count_ratio: float = 0.0


@dataclass
class SplitResult:
    """One split's verdict: problems stop the run; notes say what was (not) checked."""
    num_examples: int = 0
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    drift: Dict[str, Dict[str, float]] = field(default_factory=dict)  # feature -> measure, value, threshold
    empty: bool = False


def num_examples(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    return sum(d.num_examples for d in statistics.datasets)


def dataset_schema(schema: schema_pb2.Schema, split: str, thresholds: Thresholds,
                   with_history: bool) -> schema_pb2.Schema:
    """The curated schema with the config's dataset constraints for ``split``."""
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    constraints = result.dataset_constraints
    if thresholds.min_examples.get(split):
        constraints.min_examples_count = thresholds.min_examples[split]
    if with_history and (thresholds.min_count_ratio or thresholds.max_count_ratio):
        comparator = constraints.num_examples_drift_comparator
        if thresholds.min_count_ratio:
            comparator.min_fraction_threshold = thresholds.min_count_ratio
        if thresholds.max_count_ratio:
            comparator.max_fraction_threshold = thresholds.max_count_ratio
    return result


def _feature_name(info: anomalies_pb2.AnomalyInfo, key: str) -> str:
    return ".".join(info.path.step) or key


def _drift_line(split: str, feature: str, reason: anomalies_pb2.AnomalyInfo.Reason,
                measured: Dict[str, float]) -> str:
    """'split 'eval': feature 'fare': drift vs the accepted data: Jensen-Shannon divergence
    0.42 above the threshold 0.2'; L-infinity adds the value that changed most."""
    if not measured:
        return f"split '{split}': feature '{feature}': drift vs the accepted data: {reason.description}"
    largest = _LARGEST_CHANGE.search(reason.description)
    detail = f" (largest change: {largest.group(1)!r})" if largest else ""
    return (f"split '{split}': feature '{feature}': drift vs the accepted data: {measured['measure']} "
            f"{measured['value']:.4g} above the threshold {measured['threshold']:g}{detail}")


def _measurements(anomalies: anomalies_pb2.Anomalies) -> Dict[str, Dict[str, float]]:
    """Feature -> the drift measurement TFDV made (every compared feature, passing or not)."""
    result = {}
    for info in anomalies.drift_skew_info:
        for m in info.drift_measurements:
            result[".".join(info.path.step)] = {"measure": MEASURES.get(m.type, "distance"),
                                                "value": m.value, "threshold": m.threshold}
    return result


def _dataset_lines(split: str, anomalies: anomalies_pb2.Anomalies, current: int,
                   previous: Optional[int], thresholds: Thresholds) -> List[str]:
    lines = []
    for reason in anomalies.dataset_anomaly_info.reason:
        if reason.type == _Type.DATASET_LOW_NUM_EXAMPLES and thresholds.min_examples.get(split):
            lines.append(f"split '{split}': dataset: {current} examples, fewer than "
                         f"validation.min_examples.{split} = {thresholds.min_examples[split]}")
        elif reason.type in (_Type.COMPARATOR_LOW_NUM_EXAMPLES, _Type.COMPARATOR_HIGH_NUM_EXAMPLES) \
                and previous:
            low = reason.type == _Type.COMPARATOR_LOW_NUM_EXAMPLES
            bound = thresholds.min_count_ratio if low else thresholds.max_count_ratio
            lines.append(f"split '{split}': dataset: {current} examples vs {previous} in the accepted data: "
                         f"ratio {current / previous:.3g} {'below' if low else 'above'} "
                         f"validation.{'min' if low else 'max'}_count_ratio {bound:g}")
    return lines


def check_split(split: str, current: statistics_pb2.DatasetFeatureStatisticsList,
                schema: schema_pb2.Schema, thresholds: Thresholds,
                previous: Optional[statistics_pb2.DatasetFeatureStatisticsList] = None) -> SplitResult:
    """Empty split, dataset constraints and (with ``previous``) drift for one split."""
    result = SplitResult(num_examples=num_examples(current))
    if result.num_examples == 0:
        result.empty = True
        result.problems.append(
            f"split '{split}': empty: 0 examples (an empty file, a CSV with only its header, or an empty "
            "span); there is nothing to train or evaluate on")
        return result
    anomalies = tfdv.validate_statistics(
        current, dataset_schema(schema, split, thresholds, previous is not None),
        previous_statistics=previous)
    result.drift = _measurements(anomalies)
    for key, info in sorted(anomalies.anomaly_info.items()):
        feature = _feature_name(info, key)
        for reason in info.reason:
            if reason.type in DRIFT_TYPES:
                result.problems.append(_drift_line(split, feature, reason, result.drift.get(feature, {})))
            elif reason.type in COMPARISON_MISSING:
                result.problems.append(f"split '{split}': feature '{feature}': {reason.description}")
    previous_count = num_examples(previous) if previous is not None else None
    result.problems += _dataset_lines(split, anomalies, result.num_examples, previous_count, thresholds)
    if previous is None:
        return result
    if result.drift:
        name, worst = max(result.drift.items(), key=lambda kv: kv[1]["value"] / (kv[1]["threshold"] or 1))
        result.notes.append(
            f"split '{split}': {result.num_examples} examples vs {previous_count} accepted; drift checked on "
            f"{len(result.drift)} features, closest to its threshold: '{name}' {worst['measure']} "
            f"{worst['value']:.3g} (threshold {worst['threshold']:g})")
    else:
        result.notes.append(f"split '{split}': {result.num_examples} examples vs {previous_count} accepted; "
                            "the schema has no drift comparators")
    return result


@dataclass
class GateResult:
    """Every split's verdict, and whether drift was checked at all."""
    splits: Dict[str, SplitResult]
    drift_checked: bool
    notes: List[str]

    @property
    def problems(self) -> List[str]:
        return [p for _, r in sorted(self.splits.items()) for p in r.problems]

    @property
    def empty_splits(self) -> List[str]:
        return sorted(s for s, r in self.splits.items() if r.empty)


FIRST_RUN_NOTE = ("drift not checked: ML Metadata holds no accepted data for this pipeline yet (its first "
                  "run, or no run has passed the gate); these statistics become the baseline for the next run")


def check_splits(current: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList],
                 schema: schema_pb2.Schema, thresholds: Thresholds,
                 previous: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]] = None,
                 ) -> GateResult:
    """``check_split`` for every split; ``previous`` None: no accepted data yet (drift not checked)."""
    splits, notes = {}, []
    for split, statistics in sorted(current.items()):
        earlier = None if previous is None else previous.get(split)
        if previous is not None and earlier is None:
            notes.append(f"split '{split}': drift not checked: the accepted data has no split '{split}'")
        splits[split] = check_split(split, statistics, schema, thresholds, earlier)
        notes += splits[split].notes
    if previous is None:
        notes.insert(0, FIRST_RUN_NOTE)
    return GateResult(splits=splits, drift_checked=previous is not None, notes=notes)
