"""TrivialBaselines: what a model must beat, on the same eval split.

Custom because TFMA scores models, not rules. Computes the majority class and
the best one-feature rule (OneR: each value or quantile bin of a feature
predicts its majority training label; the feature is chosen on the training
split) from Transform's output, so the label is exactly the one the model
learned. The figures are written as JSON beside the model's metrics and
tracked in ML Metadata like every other artifact.
"""

import json
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact

BASELINES_FILE = "baselines.json"
_QUANTILE_BINS = 10


class BaselineMetrics(Artifact):
    """Accuracy of the trivial baselines on the eval split (``baselines.json``)."""
    # Kubeflow V2 encodes a custom type as its import path and re-imports it in
    # the executor pod; the path must be ``<module>.<Class>`` with one dot, so
    # the class is re-exported by ``components/__init__.py``.
    TYPE_NAME = "components.BaselineMetrics"


def majority_accuracy(train_labels: np.ndarray, eval_labels: np.ndarray) -> Dict[str, float]:
    values, counts = np.unique(train_labels, return_counts=True)
    majority = values[np.argmax(counts)]
    return {"predicts": int(majority), "accuracy": float(np.mean(eval_labels == majority))}


def _bins(train_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    if np.issubdtype(train_values.dtype, np.integer):
        return values
    edges = np.unique(np.quantile(train_values, np.linspace(0, 1, _QUANTILE_BINS + 1)[1:-1]))
    return np.searchsorted(edges, values)


def one_rule(train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray,
             fallback: int) -> np.ndarray:
    """Eval predictions of a one-feature rule fitted on the training split."""
    train_bins, eval_bins = _bins(train_x, train_x), _bins(train_x, eval_x)
    rule: Dict[int, int] = {}
    for b in np.unique(train_bins):
        labels, counts = np.unique(train_y[train_bins == b], return_counts=True)
        rule[int(b)] = int(labels[np.argmax(counts)])
    return np.array([rule.get(int(b), fallback) for b in eval_bins])


def best_one_feature_rule(train: Mapping[str, np.ndarray], evaluation: Mapping[str, np.ndarray],
                          label_key: str, feature_keys: Sequence[str]) -> Dict[str, object]:
    """The OneR rule with the best training accuracy, scored on eval."""
    fallback = majority_accuracy(train[label_key], evaluation[label_key])["predicts"]
    best = None
    for key in feature_keys:
        train_acc = float(np.mean(one_rule(train[key], train[label_key], train[key], fallback)
                                  == train[label_key]))
        if best is None or train_acc > best["train_accuracy"]:
            eval_pred = one_rule(train[key], train[label_key], evaluation[key], fallback)
            best = {"feature": key, "train_accuracy": train_acc,
                    "accuracy": float(np.mean(eval_pred == evaluation[label_key]))}
    return best or {}


def read_split(examples: Artifact, split: str, keys: List[str], feature_spec) -> Dict[str, np.ndarray]:
    """Columns ``keys`` of a gzipped TFRecord split, as numpy arrays."""
    import tensorflow as tf

    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    spec = {k: feature_spec[k] for k in keys}
    ds = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP").batch(4096)
    columns: Dict[str, list] = {k: [] for k in keys}
    for batch in ds.map(lambda x: tf.io.parse_example(x, spec)):
        for k in keys:
            columns[k].append(batch[k].numpy().reshape(-1))
    return {k: np.concatenate(v) for k, v in columns.items()}


@tfx.dsl.components.component
def TrivialBaselines(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph],
    baselines: tfx.dsl.components.OutputArtifact[BaselineMetrics],
    label_key: tfx.dsl.components.Parameter[str],
    feature_keys_json: tfx.dsl.components.Parameter[str],
) -> None:
    """Writes majority-class and best one-feature-rule accuracy on the eval split."""
    import tensorflow_transform as tft

    feature_keys = json.loads(feature_keys_json)
    spec = tft.TFTransformOutput(transform_graph.uri).transformed_feature_spec()
    keys = [label_key] + feature_keys
    train = read_split(examples, "train", keys, spec)
    evaluation = read_split(examples, "eval", keys, spec)
    result = {
        "eval_examples": int(len(evaluation[label_key])),
        "majority_class": majority_accuracy(train[label_key], evaluation[label_key]),
        "one_feature_rule": best_one_feature_rule(train, evaluation, label_key, feature_keys),
    }
    with open(os.path.join(baselines.uri, BASELINES_FILE), "w") as f:
        json.dump(result, f, indent=2)
