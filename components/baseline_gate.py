"""The baseline gate: a model is blessed only if it beats the trivial baselines of its run.

Custom because TFMA thresholds are static numbers fixed when the pipeline is
defined, while the baselines (components.baselines.TrivialBaselines: majority
class and best one-feature rule) are computed from the same run's data: no
TFMA threshold can say "more accurate than the best trivial rule on this eval
split". Without the gate a candidate less accurate than the one-feature rule
computed beside it was blessed and pushed.

The verdict is applied to the Evaluator's own ``ModelBlessing`` (by the
Evaluator's executor, components.evaluation), not written as a second
``ModelBlessing`` by a node downstream. ``LatestBlessedModelStrategy``, the
resolver behind the Evaluator's change threshold, takes every ``ModelBlessing``
with ``blessed = 1`` in the pipeline: locally by artifact type, on Kubeflow V2
through a compiled ``blessed = 1`` filter that cannot name a producer. A
second blessing would leave the Evaluator's ``blessed = 1`` in ML Metadata for
a model the gate rejected, and the next run would measure regression against a
model that was never pushed. One blessing per run, blessed only when every
rule passed, keeps that resolver, the InfraValidator and the Pusher exactly as
TFX wires them.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.io import fileio
from tfx.types.artifact import Artifact

from components.baselines import BASELINES_FILE

# Custom properties the gate adds to the Evaluator's ModelBlessing.
PASSED_PROPERTY = "baseline_gate_passed"  # 1 / 0
REASON_PROPERTY = "baseline_gate_reason"  # the comparison, in words
# Below this, two accuracies of the same examples are equal (TFMA and numpy
# add the same counts in a different order).
_EQUAL = 1e-9


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def as_number(value: object) -> Optional[float]:
    """A finite float, or None for text (TFMA reports NaN as "NaN"), bools and missing values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def best_baseline(baselines: Mapping[str, object]) -> Optional[Tuple[str, float]]:
    """(name, accuracy) of the most accurate trivial baseline in ``baselines.json``."""
    candidates = []
    majority = baselines.get("majority_class") or {}
    rule = baselines.get("one_feature_rule") or {}
    if as_number(majority.get("accuracy")) is not None:
        candidates.append(("the majority class", float(majority["accuracy"])))
    if as_number(rule.get("accuracy")) is not None:
        candidates.append((f"the one-feature rule (on {rule.get('feature', '?')})", float(rule["accuracy"])))
    return max(candidates, key=lambda c: c[1]) if candidates else None


def verdict(metric: str, accuracy: object, baselines: Mapping[str, object], margin: float) -> Verdict:
    """Passes when ``accuracy`` exceeds the best baseline by more than ``margin``.

    Fails closed: no numeric accuracy or no baseline figure is a failure
    with the reason named, never a silent pass.
    """
    value = as_number(accuracy)
    if value is None:
        return Verdict(False, f"{metric} is {accuracy!r}, not a number to compare with the trivial baselines")
    best = best_baseline(baselines)
    if best is None:
        return Verdict(False, f"no trivial baseline accuracy in {BASELINES_FILE} to compare {metric} with")
    name, figure = best
    if value - figure > margin + _EQUAL:
        return Verdict(True, f"{metric} {value:.4f} beats {name}'s {figure:.4f} by more than margin {margin:g}")
    return Verdict(False, f"{metric} {value:.4f} does not beat {name}'s {figure:.4f} by margin {margin:g}")


def read_baselines(baselines: Artifact) -> dict:
    """TrivialBaselines' figures (through fileio: the artifact may live on gs://)."""
    with fileio.open(os.path.join(baselines.uri, BASELINES_FILE), "r") as f:
        return json.load(f)


def apply(blessing: Artifact, result: Verdict) -> None:
    """Records the verdict on the Evaluator's blessing and withdraws the blessing if it failed.

    Only ever downgrades: a model TFMA did not bless stays unblessed.
    """
    blessing.set_int_custom_property(PASSED_PROPERTY, int(result.passed))
    blessing.set_string_custom_property(REASON_PROPERTY, result.reason)
    blessed_key = evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY
    if result.passed or blessing.get_int_custom_property(blessed_key) != evaluator_constants.BLESSED_VALUE:
        return
    blessed_file = os.path.join(blessing.uri, evaluator_constants.BLESSED_FILE_NAME)
    if fileio.exists(blessed_file):
        fileio.remove(blessed_file)
    with fileio.open(os.path.join(blessing.uri, evaluator_constants.NOT_BLESSED_FILE_NAME), "w") as f:
        f.write("")
    blessing.set_int_custom_property(blessed_key, evaluator_constants.NOT_BLESSED_VALUE)
