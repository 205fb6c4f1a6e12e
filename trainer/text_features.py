"""Transform for text-like feature kinds: ``text``, ``multi_categorical``, ``label_prior``.

Each kind is two pieces, so an edge export can reuse the pure part:
``analyze_*`` calls the tft analyzers (full passes over the training split)
and returns their results; ``apply_*`` is plain TensorFlow over a batch and
those results. String ops are the ones TF.js also has where there is a
choice (StringSplit, StringNGrams, StringToHashBucketFast, hash tables built
from constants); only normalisation (lower-casing, punctuation) needs ops a
browser runs in JavaScript instead.

Every kind treats a missing value and an empty string alike, so a request
that sends ``""`` for the speaker is scored exactly like a training row whose
speaker was blanked (see trainer.feature_dropout).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config import FeatureConfig, LabelConfig
from trainer import features

_KEY_SEPARATOR = "\x1f"  # joins (value, fold, class) cell keys; never in normalised text
_HASH_BUCKETS = 2 ** 62  # fold-key hashes: collisions are negligible at any data size


# --------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------

def first_value(x: Any) -> tf.Tensor:
    """[batch] strings: the first value of each row, "" when missing."""
    if isinstance(x, tf.SparseTensor):
        width = tf.maximum(x.dense_shape[1], 1)  # all rows empty: width 0
        x = tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], width]))
        return tf.sparse.to_dense(x, default_value="")[:, 0]
    return tf.reshape(x, [-1])


def all_values(x: Any, separator: str) -> tf.Tensor:
    """[batch] strings: every value of each row joined by ``separator``."""
    if isinstance(x, tf.SparseTensor):
        ragged = tf.RaggedTensor.from_sparse(x)
        return tf.strings.reduce_join(ragged, axis=1, separator=separator)
    return tf.reshape(x, [-1])


def normalize(text: tf.Tensor) -> tf.Tensor:
    """Lower case; apostrophes dropped (don't -> dont); every other run of characters
    outside [a-z0-9$%] becomes one space ($ and % carry meaning in claims)."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, "['’]", "")
    text = tf.strings.regex_replace(text, "[^a-z0-9$%]+", " ")
    return tf.strings.strip(text)


def split_tokens(text: tf.Tensor, separator: str = " ") -> tf.RaggedTensor:
    """[batch, None] tokens; empty tokens dropped (StringSplit, as TF.js has it)."""
    sparse = tf.compat.v1.string_split(text, delimiter=separator, skip_empty=True)
    rows = tf.shape(text, out_type=tf.int64)[0]
    sparse = tf.SparseTensor(sparse.indices, sparse.values, tf.stack([rows, sparse.dense_shape[1]]))
    return tf.RaggedTensor.from_sparse(sparse)


def text_tokens(feature: FeatureConfig, x: Any) -> tf.RaggedTensor:
    """Normalised word n-grams of sizes ``feature.ngrams``, per row."""
    words = split_tokens(normalize(first_value(x)))
    grams = [words if n == 1 else tf.strings.ngrams(words, n, separator=" ") for n in feature.ngrams]
    return grams[0] if len(grams) == 1 else tf.concat(grams, axis=1)


def multi_values(feature: FeatureConfig, x: Any) -> tf.RaggedTensor:
    """Each row's values, also split inside a value ("a,b"), stripped, lower-cased."""
    joined = all_values(x, feature.separator)
    values = split_tokens(tf.strings.lower(joined, encoding="utf-8"), feature.separator)
    values = tf.strings.strip(values)
    return tf.ragged.boolean_mask(values, tf.strings.length(values) > 0)


def padded_ids(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """[batch, length] int64: ids shifted by one, 0 = padding, longer rows truncated."""
    dense = (ids[:, :length] + 1).to_tensor(default_value=0, shape=[None, length])
    return tf.ensure_shape(tf.cast(dense, tf.int64), [None, length])


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


# --------------------------------------------------------------------------
# text and multi_categorical: vocabulary ids, padded
# --------------------------------------------------------------------------

def analyze_vocabulary(feature: FeatureConfig, tokens: tf.RaggedTensor) -> tf.Tensor:
    """The capped vocabulary (top_k tokens seen frequency_threshold times): its file path."""
    return tft.vocabulary(tokens.flat_values, top_k=feature.top_k,
                          frequency_threshold=feature.frequency_threshold,
                          vocab_filename=features.vocabulary_name(feature.name))


def apply_vocabulary(feature: FeatureConfig, tokens: tf.RaggedTensor, vocabulary: tf.Tensor) -> tf.Tensor:
    ids = tft.apply_vocabulary(tokens.flat_values, vocabulary, num_oov_buckets=feature.oov_buckets)
    return padded_ids(tokens.with_flat_values(ids), feature.max_tokens)


def text(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """Statement-like text -> [batch, max_tokens] ids of its words and n-grams."""
    tokens = text_tokens(feature, x)
    vocabulary = analyze_vocabulary(feature, tokens)
    return {features.transformed_name(feature.name): apply_vocabulary(feature, tokens, vocabulary)}


def multi_categorical(feature: FeatureConfig, x: Any) -> Dict[str, tf.Tensor]:
    """Several values per row (subjects) -> [batch, max_tokens] ids."""
    values = multi_values(feature, x)
    vocabulary = analyze_vocabulary(feature, values)
    return {features.transformed_name(feature.name): apply_vocabulary(feature, values, vocabulary)}


# --------------------------------------------------------------------------
# label_prior: a value's label record from the training split, out of fold
# --------------------------------------------------------------------------

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


def apply_label_prior(feature: FeatureConfig, classes: Tuple[str, ...], value: tf.Tensor,
                      key_hash: tf.Tensor, analyzed: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Smoothed label distribution and log history size of each row's value.

    A training row (its key hash was seen in the training split) gets the
    counts of the other folds only, so no row's own label ever reaches its
    features, and rows of one fold share the same exclusion (leave-one-out
    would leak: total minus own count reveals the own label). Any other row
    (validation, test, serving) gets the counts of the whole training split.
    """
    table = sorted_table(analyzed["keys"], analyzed["counts"])
    rows, folds, k = tf.shape(value)[0], feature.folds, len(classes)
    grid = [rows, folds, k]
    cells = cell_key(tf.broadcast_to(value[:, None, None], grid),
                     tf.broadcast_to(tf.range(folds, dtype=tf.int64)[None, :, None], grid),
                     tf.broadcast_to(tf.constant(list(classes))[None, None, :], grid))
    per_fold = tf.cast(find(table, cells), tf.float32)  # [rows, folds, classes]
    fold = key_hash % folds
    in_train = tf.cast(find(table, row_key(key_hash)) > 0, tf.float32)  # [rows]
    own_fold = tf.gather(per_fold, fold, batch_dims=1)  # [rows, classes]
    present = tf.cast(tf.strings.length(value) > 0, tf.float32)
    counts = (tf.reduce_sum(per_fold, axis=1) - in_train[:, None] * own_fold) * present[:, None]
    prior = tf.cast(find(table, class_key(tf.constant(list(classes)))), tf.float32)
    prior = prior / tf.maximum(tf.reduce_sum(prior), 1.0)
    n = tf.reduce_sum(counts, axis=1)
    smoothed = (counts + feature.smoothing * prior[None, :]) / (n + feature.smoothing)[:, None]
    return {
        features.transformed_name(feature.name): tf.ensure_shape(smoothed, [None, k]),
        features.transformed_name(f"{feature.name}_count"): tf.math.log1p(n),
        features.transformed_name(f"{feature.name}_seen"): tf.cast(n > 0, tf.int64),
    }


def label_prior(feature: FeatureConfig, inputs: Mapping[str, Any], label: LabelConfig) -> Dict[str, tf.Tensor]:
    """The label record of ``feature.column``'s value (e.g. a speaker's past ratings)."""
    value = tf.strings.strip(first_value(inputs[feature.column]))
    key_hash = fold_key_hash(inputs[feature.fold_key])
    label_value = first_value(inputs[label.column]) if label.column in inputs else tf.fill(tf.shape(value), "")
    analyzed = analyze_label_prior(feature, value, key_hash, label_value)
    return apply_label_prior(feature, label.classes, value, key_hash, analyzed)


# Kinds that read one raw column, and kinds that read several (plus the label).
COLUMN_KINDS = {"text": text, "multi_categorical": multi_categorical}
ROW_KINDS = {"label_prior": label_prior}
