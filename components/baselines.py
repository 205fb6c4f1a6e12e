"""TrivialBaselines: what a model must beat, on the same eval split.

Custom because TFMA scores models, not rules. Computes the majority class and
the best one-feature rule (OneR: each value or quantile bin of a feature
predicts its majority training label; the feature is chosen on the training
split) from Transform's output, so the label is exactly the one the model
learned. Neither split is held whole: the rules are fitted on a bounded uniform
sample of the training split and scored on the eval split batch by batch.
The figures are written as JSON beside the model's metrics and tracked in
ML Metadata like every other artifact.
"""

import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact

from components.tfx_api import tfx

BASELINES_FILE = "baselines.json"
_QUANTILE_BINS = 10
_READ_BATCH = 4096
# The rules are fitted on a uniform sample of at most this many training rows, so memory does
# not grow with the data (about 5 MB for the taxi's six columns). Enough: the quantile edges of a
# 100,000-row sample are within 0.43 percentile points of the full split's with 95% confidence
# (Dvoretzky-Kiefer-Wolfowitz: sqrt(ln(2/0.05) / 2n)), and each of a rule's at most ~80 cells
# (10 quantile bins, 24 hours, 77 community areas) keeps hundreds of rows for its majority label.
# Smaller splits (the 15,000-row taxi CSV: 12,000 training rows) are used whole. The eval split
# is always scored whole, streamed.
TRAIN_SAMPLE_ROWS = 100_000
SAMPLE_SEED = 0
_SAMPLE_KEY = "__sample_key__"


class BaselineMetrics(Artifact):
    """Accuracy of the trivial baselines on the eval split (``baselines.json``)."""
    # Kubeflow V2 encodes a custom type as its import path and re-imports it in
    # the executor pod; the path must be ``<module>.<Class>`` with one dot, so
    # the class is re-exported by ``components/__init__.py``.
    TYPE_NAME = "components.BaselineMetrics"


def majority_class(train_labels: np.ndarray) -> int:
    values, counts = np.unique(train_labels, return_counts=True)
    return int(values[np.argmax(counts)])


@dataclass(frozen=True)
class OneRule:
    """A fitted one-feature rule: bin edges (None for integer ids), each bin's majority label, and
    its accuracy on the rows it was fitted on (each bin's majority count: no second prediction pass)."""
    edges: Optional[np.ndarray]
    labels: Mapping[int, int]
    fallback: int
    train_accuracy: float

    def predict(self, values: np.ndarray) -> np.ndarray:
        bins = values if self.edges is None else np.searchsorted(self.edges, values)
        return np.array([self.labels.get(int(b), self.fallback) for b in bins], dtype=np.int64)


def fit_one_rule(train_x: np.ndarray, train_y: np.ndarray, fallback: int) -> OneRule:
    """Integer features are used as they are; floats are cut at ``_QUANTILE_BINS`` quantiles."""
    edges = None
    if not np.issubdtype(train_x.dtype, np.integer):
        edges = np.unique(np.quantile(train_x, np.linspace(0, 1, _QUANTILE_BINS + 1)[1:-1]))
    bins = train_x if edges is None else np.searchsorted(edges, train_x)
    rule: Dict[int, int] = {}
    correct = 0
    for b in np.unique(bins):
        labels, counts = np.unique(train_y[bins == b], return_counts=True)
        rule[int(b)] = int(labels[np.argmax(counts)])
        correct += int(counts.max())
    return OneRule(edges, rule, fallback, correct / len(train_y))


def best_one_feature_rule(train: Mapping[str, np.ndarray], label_key: str, feature_keys: Sequence[str],
                          fallback: int) -> Optional[Tuple[str, float, OneRule]]:
    """(feature, training accuracy, rule) of the OneR rule with the best training accuracy."""
    best = None
    for key in feature_keys:
        rule = fit_one_rule(train[key], train[label_key], fallback)
        if best is None or rule.train_accuracy > best[1]:
            best = (key, rule.train_accuracy, rule)
    return best


def sample_rows(batches: Iterable[Mapping[str, np.ndarray]], size: int,
                seed: int = SAMPLE_SEED) -> Dict[str, np.ndarray]:
    """A uniform sample without replacement of ``size`` rows of the stream (every row when
    there are fewer), in stream order; memory is the sample plus one batch.

    Bottom-k sampling: each row draws a uniform key and the ``size`` smallest
    keys are kept, which is a uniform sample of any stream, whatever its order.
    """
    rng = np.random.default_rng(seed)
    kept: Dict[str, np.ndarray] = {}
    for batch in batches:
        rows = {**batch, _SAMPLE_KEY: rng.random(len(next(iter(batch.values()))))}
        kept = {k: np.concatenate([kept[k], v]) for k, v in rows.items()} if kept else rows
        if len(kept[_SAMPLE_KEY]) > size:  # positions sorted: the sample stays in stream order
            keep = np.sort(np.argpartition(kept[_SAMPLE_KEY], size)[:size])
            kept = {k: v[keep] for k, v in kept.items()}
    return {k: v for k, v in kept.items() if k != _SAMPLE_KEY}


def accuracies(batches: Iterable[Mapping[str, np.ndarray]], label_key: str,
               predictors: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]]
               ) -> Tuple[int, Dict[str, float]]:
    """(rows, accuracy per predictor) over a stream of batches, one batch in memory at a time."""
    rows, correct = 0, dict.fromkeys(predictors, 0)
    for batch in batches:
        labels = batch[label_key]
        rows += len(labels)
        for name, predict in predictors.items():
            correct[name] += int(np.sum(predict(batch) == labels))
    return rows, {name: c / rows if rows else float("nan") for name, c in correct.items()}


def read_batches(examples: Artifact, split: str, keys: List[str], feature_spec,
                 batch_size: int = _READ_BATCH) -> Iterator[Dict[str, np.ndarray]]:
    """Columns ``keys`` of a gzipped TFRecord split, ``batch_size`` rows at a time."""
    import tensorflow as tf

    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    spec = {k: feature_spec[k] for k in keys}
    ds = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP").batch(batch_size)
    for batch in ds.map(lambda x: tf.io.parse_example(x, spec)):
        yield {k: batch[k].numpy().reshape(-1) for k in keys}


def baseline_figures(train_batches: Iterable[Mapping[str, np.ndarray]],
                     eval_batches: Iterable[Mapping[str, np.ndarray]],
                     label_key: str, feature_keys: Sequence[str]) -> Dict[str, object]:
    """Majority class and best OneR rule, fitted on a sample of ``TRAIN_SAMPLE_ROWS`` training
    rows and scored on every eval row (streamed)."""
    train = sample_rows(train_batches, TRAIN_SAMPLE_ROWS)
    if not train or not len(train[label_key]):
        raise ValueError(f"split 'train': expected examples with {label_key!r} to fit the baselines, got none")
    majority = majority_class(train[label_key])
    best = best_one_feature_rule(train, label_key, feature_keys, majority)
    predictors = {"majority": lambda b: np.full(len(b[label_key]), majority)}
    if best:
        feature, _, rule = best
        predictors["rule"] = lambda b: rule.predict(b[feature])
    rows, accuracy = accuracies(eval_batches, label_key, predictors)
    one_rule = {"feature": best[0], "train_accuracy": best[1], "accuracy": accuracy["rule"]} if best else {}
    return {"eval_examples": rows, "train_rows_fitted": int(len(train[label_key])),
            "majority_class": {"predicts": majority, "accuracy": accuracy["majority"]},
            "one_feature_rule": one_rule}


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
    result = baseline_figures(read_batches(examples, "train", keys, spec),
                              read_batches(examples, "eval", keys, spec), label_key, feature_keys)
    with open(os.path.join(baselines.uri, BASELINES_FILE), "w") as f:
        json.dump(result, f, indent=2)
