"""ErrorAnalysis: the blessed candidate's errors, as the served model makes them.

Custom because TFMA does not give us three things the report needs: macro-F1,
the binary accuracy of a multi-class model (positive classes folded) with the
calibration of its folded probability, and the
model's quality when a request carries only some features (a browser page
has a statement but no speaker). The model is called through its
``serving_tf_example`` signature on ExampleGen's raw examples, i.e. exactly
the served path; labels come from its own ``transform_features`` signature,
so any label kind works. Per-slice and fairness figures stay with TFMA
(slices in the eval config); this component adds the confusion matrix and
the figures above, per non-train split, as JSON in ML Metadata. Each split is
streamed in batches: only the per-row predictions and labels are kept.
"""

import json
import os
from typing import Dict, Iterable, Optional, Sequence, Set, Tuple

import numpy as np
from tfx.types.artifact import Artifact
from tfx.utils import path_utils

from common.serving_contract import OUTPUT_KEY, TF_EXAMPLE_SIGNATURE, TRANSFORM_SIGNATURE
from components import classification_metrics as cm
from components import raw_examples
from components.tfx_api import tfx

ANALYSIS_FILE = "analysis.json"
_BATCH = 256


class ModelAnalysis(Artifact):
    """Error-analysis figures of a model (``analysis.json``)."""
    # Imported by this path on Kubeflow V2 (see components/__init__.py).
    TYPE_NAME = "components.ModelAnalysis"


def _predict(signature, examples) -> np.ndarray:
    return signature(examples=examples)[OUTPUT_KEY].numpy()


def _labels(signature, examples, label_key: str) -> np.ndarray:
    return signature(examples=examples)[label_key].numpy().reshape(-1).astype(np.int64)


def split_outputs(serve, transform, batches: Iterable[Sequence[bytes]], label_key: str,
                  reduced: Optional[Set[str]] = None) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(probabilities, labels, probabilities of the reduced requests) over a stream of record batches.

    Only these figures are kept, a few numbers per row (24 bytes for a binary
    model: 7 MB for the 300,000 eval rows of 1.5 M): the records themselves are
    read, scored and dropped one ``_BATCH`` at a time, so the split is never in memory.
    """
    import tensorflow as tf

    probabilities, labels, reduced_probabilities = [], [], []
    for records in batches:
        examples = tf.constant(list(records))  # one tensor for both signatures
        labels.append(_labels(transform, examples, label_key))
        probabilities.append(_predict(serve, examples))
        if reduced:
            reduced_probabilities.append(
                _predict(serve, tf.constant([raw_examples.keep_only(r, reduced) for r in records])))
    if not labels:
        return np.zeros((0, 1)), np.zeros((0,), np.int64), np.zeros((0, 1)) if reduced else None
    return (np.concatenate(probabilities), np.concatenate(labels),
            np.concatenate(reduced_probabilities) if reduced else None)


def analyse(cfg, probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, object]:
    """Scores of one set of predictions, with the binary fold of a multi-class label;
    for a binary model or fold, also the calibration of P(positive)."""
    predictions = cm.predicted_classes(probabilities)
    if cfg.num_classes > 2 and cfg.label.positive_classes:
        positive = cfg.label.positive_class_ids
        binary_labels, p_positive = cm.fold(labels, positive), cm.positive_probability(probabilities, positive)
        result = cm.scores(labels, predictions, cfg.num_classes, binary_labels,
                           (p_positive > 0.5).astype(np.int64))
    elif cfg.num_classes == 2:
        binary_labels, p_positive = labels, cm.positive_probability(probabilities, [1])
        result = cm.scores(labels, predictions, cfg.num_classes)
    else:  # several classes and no fold: no P(positive) to calibrate
        return cm.scores(labels, predictions, cfg.num_classes)
    result["calibration"] = cm.calibration(p_positive, binary_labels)
    return result


@tfx.dsl.components.component
def ErrorAnalysis(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    analysis: tfx.dsl.components.OutputArtifact[ModelAnalysis],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """Writes analysis.json: {split: {all_features | <reduced>: figures}, class_names}."""
    import tensorflow as tf

    from common.executor_config import config_from_slice
    from trainer import features

    cfg = config_from_slice(json.loads(config_json), source="ErrorAnalysis")
    loaded = tf.saved_model.load(path_utils.serving_model_path(model.uri))
    serve, transform = loaded.signatures[TF_EXAMPLE_SIGNATURE], loaded.signatures[TRANSFORM_SIGNATURE]
    label_key = features.transformed_label_name(cfg)
    reduced = [f.column for f in cfg.features if f.name in cfg.evaluation.reduced_features]
    result: Dict[str, object] = {"class_names": cfg.class_names, "splits": {}}
    for split in raw_examples.split_names(examples):
        if split == "train":
            continue
        probabilities, labels, reduced_probabilities = split_outputs(
            serve, transform, raw_examples.batches(examples, split, _BATCH), label_key, set(reduced))
        figures = {"all_features": analyse(cfg, probabilities, labels)}
        if reduced:
            figures["only_" + "+".join(cfg.evaluation.reduced_features)] = analyse(
                cfg, reduced_probabilities, labels)
        result["splits"][split] = figures
    with open(os.path.join(analysis.uri, ANALYSIS_FILE), "w") as f:
        json.dump(result, f, indent=2)
