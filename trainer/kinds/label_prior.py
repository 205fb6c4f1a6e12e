"""``label_prior``: a value's label record from the training split, out of fold.

E.g. a speaker's past ratings: the smoothed label distribution and the log
history size of the rows sharing this row's value of ``feature.column``.
Transform (``transform``) reads that column, the fold key column and the label,
and counts over the analysed (training) split; a training row sees only the
counts of the other folds, so no row's own label reaches its features. The
edge half (``prepare``/``apply``) serves rows that are never training rows:
the full training counts of the value, from a constant table
(``edge_analysis``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from common.config import FeatureConfig, LabelConfig
from trainer.kinds.base import FeatureKind, ModelInput, name_constants
from trainer.kinds.strings import first_value, strip
from trainer.kinds.vocabulary import ConstantVocabulary
from trainer.names import transformed_name, vocabulary_name

_KEY_SEPARATOR = "\x1f"  # joins (value, fold, class) cell keys; never in normalised text
_HASH_BUCKETS = 2 ** 62  # fold-key hashes: collisions are negligible at any data size


def fold_key_hash(x: Any) -> tf.Tensor:
    """[batch] int64 hash of a row's fold key (StringToHashBucketFast)."""
    return tf.strings.to_hash_bucket_fast(first_value(x), _HASH_BUCKETS)


def string_hash(x: tf.Tensor) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(x, _HASH_BUCKETS)


def cell_key(value: tf.Tensor, fold: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
    """int64 hash of (value, fold, class): the key of one count cell."""
    return string_hash(tf.strings.join([value, tf.strings.as_string(fold), label], separator=_KEY_SEPARATOR))


def sorted_table(keys: tf.Tensor, values: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(sorted int64 keys, their values), ending in a sentinel so every search stays
    in range, also with no keys at all."""
    order = tf.argsort(keys)
    sentinel = tf.constant([tf.int64.max], tf.int64)
    return (tf.concat([tf.gather(keys, order), sentinel], axis=0),
            tf.concat([tf.gather(tf.cast(values, tf.int64), order), tf.constant([0], tf.int64)], axis=0))


def find(table: Tuple[tf.Tensor, tf.Tensor], queries: tf.Tensor) -> tf.Tensor:
    """The value of each query key, 0 where absent: a binary search (any query shape).

    A search, not a hash table, because tft hands analyzer results over as
    tensors and a table initialised from them cannot be saved in the graph.
    """
    sorted_keys, sorted_values = table
    flat = tf.reshape(queries, [-1])
    position = tf.searchsorted(sorted_keys, flat, side="left")
    found = tf.gather(sorted_keys, position) == flat
    result = tf.where(found, tf.gather(sorted_values, position), tf.zeros_like(flat))
    return tf.reshape(result, tf.shape(queries))


def lookup(keys: tf.Tensor, values: tf.Tensor, queries: tf.Tensor) -> tf.Tensor:
    """values[keys == query], 0 where absent."""
    return find(sorted_table(keys, values), queries)


def class_key(label: tf.Tensor) -> tf.Tensor:
    return string_hash(tf.strings.join(["class", label], separator=_KEY_SEPARATOR))


def row_key(key_hash: tf.Tensor) -> tf.Tensor:
    return string_hash(tf.strings.join(["row", tf.strings.as_string(key_hash)], separator=_KEY_SEPARATOR))


def prior_keys(feature: FeatureConfig, value: tf.Tensor, key_hash: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
    """Every count the prior needs, as keys of one count_per_key: a (value, fold,
    class) cell per row, the row's class, and the row itself (training rows)."""
    return tf.concat([cell_key(value, key_hash % feature.folds, label), class_key(label), row_key(key_hash)],
                     axis=0)


def analyze_label_prior(feature: FeatureConfig, value: tf.Tensor, key_hash: tf.Tensor,
                        label: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Counts over the analysed (training) split, as constant tensors (one analyzer)."""
    keys, counts = tft.count_per_key(prior_keys(feature, value, key_hash, label))
    return {"keys": keys, "counts": counts}


def apply_label_prior(feature: FeatureConfig, classes: Any, value: tf.Tensor,
                      key_hash: tf.Tensor, analyzed: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Smoothed label distribution and log history size of each row's value.

    A training row (its key hash was seen in the training split) gets the
    counts of the other folds only, so no row's own label ever reaches its
    features, and rows of one fold share the same exclusion (leave-one-out
    would leak: total minus own count reveals the own label). Any other row
    (validation, test, serving) gets the counts of the whole training split.
    """
    table = sorted_table(analyzed["keys"], analyzed["counts"])
    classes = tf.reshape(tf.constant(list(classes)) if isinstance(classes, (list, tuple)) else classes, [-1])
    rows, folds, k = tf.shape(value)[0], feature.folds, tf.shape(classes)[0]
    grid = [rows, folds, k]
    cells = cell_key(tf.broadcast_to(value[:, None, None], grid),
                     tf.broadcast_to(tf.range(folds, dtype=tf.int64)[None, :, None], grid),
                     tf.broadcast_to(classes[None, None, :], grid))
    per_fold = tf.cast(find(table, cells), tf.float32)  # [rows, folds, classes]
    fold = key_hash % folds
    in_train = tf.cast(find(table, row_key(key_hash)) > 0, tf.float32)  # [rows]
    own_fold = tf.gather(per_fold, fold, batch_dims=1)  # [rows, classes]
    present = tf.cast(tf.strings.length(value) > 0, tf.float32)
    counts = (tf.reduce_sum(per_fold, axis=1) - in_train[:, None] * own_fold) * present[:, None]
    prior = tf.cast(find(table, class_key(classes)), tf.float32)
    return prior_outputs(feature, counts, prior / tf.maximum(tf.reduce_sum(prior), 1.0))


def prior_outputs(feature: FeatureConfig, counts: tf.Tensor, prior: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Per-row class counts [rows, k] and the class prior [k] -> the model inputs
    (Transform and the edge share this math; only where the counts come from differs)."""
    k = prior.shape[0]  # static: the classes are a constant
    n = tf.reduce_sum(counts, axis=1)
    smoothed = (counts + feature.smoothing * prior[None, :]) / (n + feature.smoothing)[:, None]
    return {
        transformed_name(feature.name): tf.reshape(smoothed, [-1, k]),
        transformed_name(f"{feature.name}_count"): tf.math.log1p(n),
        transformed_name(f"{feature.name}_seen"): tf.cast(n > 0, tf.int64),
    }


def values_vocabulary_name(feature: FeatureConfig) -> str:
    """Every value of the prior's column seen in training (the edge's count table rows)."""
    return vocabulary_name(f"{feature.name}_values")


def transform(feature: FeatureConfig, inputs: Mapping[str, Any], label: LabelConfig) -> Dict[str, tf.Tensor]:
    """Transform: the label record of ``feature.column``'s value (e.g. a speaker's past ratings)."""
    value = prepare(feature, first_value(inputs[feature.column]))
    key_hash = fold_key_hash(inputs[feature.fold_key])
    label_value = first_value(inputs[label.column]) if label.column in inputs else tf.fill(tf.shape(value), "")
    analyzed = dict(analyze_label_prior(feature, value, key_hash, label_value),
                    classes=tf.constant(list(label.classes)))
    # named so the edge graph reads them back (trainer.edge_graph.read_analyzer_constants)
    analyzed = name_constants(feature, analyzed)
    tft.vocabulary(value, vocab_filename=values_vocabulary_name(feature))
    return apply_label_prior(feature, analyzed["classes"], value, key_hash, analyzed)


def prepare(feature: FeatureConfig, value: tf.Tensor) -> tf.Tensor:
    return strip(value)


def edge_analysis(feature: FeatureConfig, constants: Mapping[str, np.ndarray],
                  tf_transform_output: Any) -> Dict[str, Any]:
    """A serving row is never a training row: the full training counts of every value
    seen in training, as a constant [values + 1, k] matrix (last row: unseen, zeros)
    behind a constant vocabulary, and the class prior."""
    if not {"keys", "counts", "classes"} <= set(constants):
        raise ValueError(f"feature {feature.name!r}: the Transform graph holds no label-prior counts "
                         "(a model transformed before edge support; re-run Transform)")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in constants["classes"].tolist()]
    values = list(tf_transform_output.vocabulary_by_name(values_vocabulary_name(feature)))
    table = dict(zip(constants["keys"].tolist(), constants["counts"].tolist()))
    k, folds = len(classes), feature.folds
    grid = [len(values), folds, k]
    cells = cell_key(tf.broadcast_to(tf.constant(values, tf.string)[:, None, None], grid),
                     tf.broadcast_to(tf.range(folds, dtype=tf.int64)[None, :, None], grid),
                     tf.broadcast_to(tf.constant(list(classes))[None, None, :], grid)).numpy()
    counts = np.vectorize(lambda key: table.get(int(key), 0), otypes=[np.int64])(cells).sum(axis=1)
    counts = np.concatenate([counts, np.zeros([1, k], np.int64)]).astype(np.float32)
    counts[[i for i, v in enumerate(values) if v == b""]] = 0.0  # missing: no record (Transform's mask)
    prior = np.array([table.get(int(key), 0) for key in
                      class_key(tf.constant(list(classes))).numpy()], np.float32)
    return {"lookup": ConstantVocabulary(values, 1, name=f"vocab_{feature.name}_values"),
            "counts": counts, "prior": prior / max(prior.sum(), 1.0)}


def apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
          analysis: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Edge: the full training counts of the value (a gather), then ``prior_outputs``."""
    counts = tf.gather(tf.constant(analysis["counts"]), analysis["lookup"](value))
    return prior_outputs(feature, counts, tf.constant(analysis["prior"]))


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    """A distribution over the label's classes, and log1p(count)."""
    return [ModelInput(transformed_name(feature.name), 0, feature.name, width=label_classes),
            ModelInput(transformed_name(f"{feature.name}_count"), 0, feature.name)]


KIND = FeatureKind(prepare=prepare, apply=apply, model_inputs=model_inputs, edge_analysis=edge_analysis,
                   transform=transform)
