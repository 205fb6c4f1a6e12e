"""Text-like feature kinds: ``text``, ``multi_categorical``, ``label_prior``.

Each kind follows ``trainer.preprocessing.FeatureKind`` (see that module's
docstring) so that Transform and the edge exports (TFLite, TF.js) share the
math. The edge runtimes lack several string ops (measured for TF.js 4.17:
no StringLower, StringStrip, ReduceJoin, AsString, StringLength,
UnsortedSegmentSum) and the TF.js converter lower-cases every regex pattern it
loads, so:

* Lower-casing is ASCII (``tf.strings.lower``'s default), done by Transform's
  ``column`` step and, at the edge, by the caller (the extension's scorer.js
  does the same ASCII mapping, and folds the typographic apostrophe to "'"). Unicode lower-casing would differ from it only
  on non-ASCII capitals, which normalisation then drops anyway, except for
  the few that lower-case to ASCII (the Kelvin sign K -> k): ASCII on both
  sides is exact.
* Patterns are lower-case ASCII only (the converter also decodes them as
  Latin-1); stripping is a regex replacement.
* Tokens are laid out in a dense [batch, max_tokens] grid with StringSplit,
  StringNGrams, Cumsum and ScatterNd; no ragged ops, no segment sums.

Every kind treats a missing value and an empty string alike, so a request
that sends ``""`` for the speaker is scored exactly like a training row whose
speaker was blanked (see trainer.feature_dropout).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Dict, Iterator, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from common.config import FeatureConfig, LabelConfig
from trainer import features

_KEY_SEPARATOR = "\x1f"  # joins (value, fold, class) cell keys; never in normalised text
_HASH_BUCKETS = 2 ** 62  # fold-key hashes: collisions are negligible at any data size
_SPACE = r"[\t\n\v\f\r ]"  # what tf.strings.strip strips (ASCII whitespace)
# U+2019, how pages (and some LIAR rows) write "don't". The TF.js converter decodes regex
# patterns as Latin-1 bytes, so a non-ASCII pattern never matches there: the caller folds
# it to "'" along with the lower-casing (trainer/edge_runtime.py, extension/scorer.js).
TYPOGRAPHIC_APOSTROPHE = "\u2019"
# n-grams: StringNGrams (TF.js has it, TFLite has not even as a select op) or StringJoin
# of shifted words (a TFLite select op; not in TF.js). Same tokens, same order.
_NGRAMS_BY_JOIN = contextvars.ContextVar("ngrams_by_join", default=False)


@contextlib.contextmanager
def ngrams_by_join() -> Iterator[None]:
    """Graphs traced inside build word n-grams with StringJoin (the TFLite edge graph)."""
    token = _NGRAMS_BY_JOIN.set(True)
    try:
        yield
    finally:
        _NGRAMS_BY_JOIN.reset(token)


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
    """[batch] strings: every value of each row joined by ``separator`` (Transform only:
    ReduceJoin; edge callers send one joined string per row)."""
    if isinstance(x, tf.SparseTensor):
        ragged = tf.RaggedTensor.from_sparse(x)
        return tf.strings.reduce_join(ragged, axis=1, separator=separator)
    return tf.reshape(x, [-1])


def ascii_lower(text: tf.Tensor) -> tf.Tensor:
    """What edge callers do first: ASCII lower-casing (tf.strings.lower without
    encoding) and the typographic apostrophe folded to the ASCII one."""
    return tf.strings.regex_replace(tf.strings.lower(text), TYPOGRAPHIC_APOSTROPHE, "'")


def strip(text: tf.Tensor) -> tf.Tensor:
    """tf.strings.strip as a regex (StringStrip has no TF.js kernel)."""
    return tf.strings.regex_replace(text, f"^{_SPACE}+|{_SPACE}+$", "")


def normalize_lowered(text: tf.Tensor) -> tf.Tensor:
    """Lower-cased text -> words separated by spaces: apostrophes dropped (don't ->
    dont); every other run of characters outside [a-z0-9$%] becomes one space ($ and %
    carry meaning in claims). Runs at the edge too: lower-case patterns only."""
    text = tf.strings.regex_replace(text, "'", "")
    return tf.strings.regex_replace(text, "[^a-z0-9$%]+", " ")


def normalize(text: tf.Tensor) -> tf.Tensor:
    """Raw text -> its words separated by single spaces (Transform's full normalisation)."""
    return strip(normalize_lowered(ascii_lower(text)))


def tokens(text: tf.Tensor, separator: str = " ",
           ngrams: Sequence[int] = (1,)) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Tokens of each row and their word n-grams, flat: (tokens, row, position).

    A row's unigrams come first, then its n-grams by size, positions counting
    on; empty tokens are dropped. Graph-only ops the edge runtimes have:
    StringSplit (v1), StringNGrams, Cumsum, and per-row counts as a
    membership matrix summed over tokens (no segment sums).
    """
    text = tf.reshape(text, [-1])
    split = tf.compat.v1.string_split(text, delimiter=separator, skip_empty=True)
    words, row = split.values, split.indices[:, 0]
    batch = tf.shape(text, out_type=tf.int64)[0]
    counts = _per_row_counts(row, batch)
    splits = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(counts)], axis=0)
    out_tokens, out_rows, out_positions = [], [], []
    offset = tf.zeros_like(counts)  # tokens already placed in each row
    for n in ngrams:
        if n > 1 and _NGRAMS_BY_JOIN.get():
            grams, gram_row, position = _ngrams_by_join(words, row, splits, offset, n)
        else:
            if n == 1:
                grams, gram_splits = words, splits
            else:
                grams, gram_splits = tf.raw_ops.StringNGrams(
                    data=words, data_splits=splits, separator=" ", ngram_widths=[n], left_pad="",
                    right_pad="", pad_width=0, preserve_short_sequences=False)
            index = tf.range(tf.shape(grams, out_type=tf.int64)[0])
            # row of each gram: how many row ends lie at or before it
            gram_row = tf.reduce_sum(tf.cast(index[:, None] >= gram_splits[None, 1:], tf.int64), axis=1)
            position = index - tf.gather(gram_splits, gram_row) + tf.gather(offset, gram_row)
        out_tokens.append(grams)
        out_rows.append(gram_row)
        out_positions.append(position)
        offset = offset + tf.maximum(counts - (n - 1), 0)
    return tf.concat(out_tokens, 0), tf.concat(out_rows, 0), tf.concat(out_positions, 0)


def _ngrams_by_join(words: tf.Tensor, row: tf.Tensor, splits: tf.Tensor, offset: tf.Tensor,
                    n: int) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """StringNGrams' output as a StringJoin of shifted words: the n-gram starting at
    word j exists when word j + n - 1 is in the same row; the others get a position
    past any max_tokens (``padded_ids`` drops them)."""
    total = tf.shape(words, out_type=tf.int64)[0]
    starts = tf.maximum(total - (n - 1), 0)
    grams = tf.strings.join([words[i:i + starts] for i in range(n)], separator=" ")
    first, last = row[:starts], row[n - 1:n - 1 + starts]
    position = tf.range(starts) - tf.gather(splits, first) + tf.gather(offset, first)
    return grams, first, tf.where(first == last, position, tf.fill(tf.shape(position), tf.int64.max))


def _per_row_counts(row: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    membership = tf.cast(tf.equal(row[:, None], tf.range(batch)[None, :]), tf.int64)
    return tf.reduce_sum(membership, axis=0)


def padded_ids(ids: tf.Tensor, row: tf.Tensor, position: tf.Tensor, batch: tf.Tensor,
               length: int) -> tf.Tensor:
    """[batch, length] int64: ids shifted by one, 0 = padding, positions >= length dropped.

    Dropped tokens scatter a 0 onto their row's first cell (ScatterNd adds), so
    no boolean mask (a Where) is needed.
    """
    ids = tf.cast(ids, tf.int64)
    keep = position < length
    cells = tf.stack([row, tf.where(keep, position, tf.zeros_like(position))], axis=1)
    values = tf.where(keep, ids + 1, tf.zeros_like(ids))
    shape = tf.stack([tf.cast(batch, tf.int64), tf.constant(length, tf.int64)])
    # a reshape, not tf.ensure_shape: TF.js 4.17 mis-reads EnsureShape's shape attribute
    return tf.reshape(tf.scatter_nd(cells, values, shape), [-1, length])


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

def text_column(feature: FeatureConfig, x: Any) -> tf.Tensor:
    """Transform only: a row's first value, ASCII lower-cased (the edge caller's job)."""
    return ascii_lower(first_value(x))


def multi_column(feature: FeatureConfig, x: Any) -> tf.Tensor:
    """Transform only: a row's values joined by the separator, ASCII lower-cased."""
    return ascii_lower(all_values(x, feature.separator))


def text_prepare(feature: FeatureConfig, text: tf.Tensor) -> tf.Tensor:
    return normalize_lowered(text)


def multi_prepare(feature: FeatureConfig, text: tf.Tensor) -> tf.Tensor:
    """Blanks around the separators and at the ends removed (each value stripped)."""
    try:
        separator = _regex_literal(feature.separator)
    except ValueError as err:
        raise ValueError(f"feature {feature.name!r}: {err}") from None
    text = tf.strings.regex_replace(text, f"{_SPACE}*{separator}{_SPACE}*", feature.separator)
    return strip(text)


def _regex_literal(text: str) -> str:
    """``text`` as an RE2 and JavaScript regex literal; refuses upper-case letters (the
    TF.js converter lower-cases patterns, so they would not match there)."""
    if text != text.lower() or not text.isascii():
        raise ValueError(f"separator {text!r}: expected ASCII without upper-case letters "
                         "(TF.js lower-cases regex patterns and reads them as Latin-1)")
    return "".join(c if c.isalnum() else "\\" + c if c in "\\^$.|?*+()[]{}-/" else c for c in text)


def _feature_tokens(feature: FeatureConfig, prepared: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    if feature.kind == "text":
        return tokens(prepared, " ", feature.ngrams)
    return tokens(prepared, feature.separator)


def vocabulary_analyze(feature: FeatureConfig, column: Any) -> Dict[str, Any]:
    """The capped vocabulary (top_k tokens seen frequency_threshold times) and its
    file-backed lookup (the edge rebuilds it from constants: categorical's edge_analysis)."""
    flat, _, _ = _feature_tokens(feature, first_value(column))
    vocabulary = tft.vocabulary(flat, top_k=feature.top_k, frequency_threshold=feature.frequency_threshold,
                                vocab_filename=features.vocabulary_name(feature.name))
    return {"lookup": lambda v: tft.apply_vocabulary(v, vocabulary, num_oov_buckets=feature.oov_buckets)}


def vocabulary_apply(feature: FeatureConfig, prepared: tf.Tensor, present: tf.Tensor,
                     analysis: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """[batch, max_tokens] ids of the tokens (missing = "" = no tokens = all padding)."""
    flat, row, position = _feature_tokens(feature, prepared)
    # One extra key: TF.js's table lookup fails on zero keys (a batch without tokens).
    ids = analysis["lookup"](tf.concat([flat, tf.constant([""])], axis=0))[:-1]
    batch = tf.shape(prepared, out_type=tf.int64)[0]
    return {features.transformed_name(feature.name): padded_ids(ids, row, position, batch, feature.max_tokens)}


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
        features.transformed_name(feature.name): tf.reshape(smoothed, [-1, k]),
        features.transformed_name(f"{feature.name}_count"): tf.math.log1p(n),
        features.transformed_name(f"{feature.name}_seen"): tf.cast(n > 0, tf.int64),
    }


def values_vocabulary_name(feature: FeatureConfig) -> str:
    """Every value of the prior's column seen in training (the edge's count table rows)."""
    return features.vocabulary_name(f"{feature.name}_values")


def label_prior(feature: FeatureConfig, inputs: Mapping[str, Any], label: LabelConfig) -> Dict[str, tf.Tensor]:
    """The label record of ``feature.column``'s value (e.g. a speaker's past ratings)."""
    from trainer.preprocessing import constant_node_name  # it imports this module

    value = label_prior_prepare(feature, first_value(inputs[feature.column]))
    key_hash = fold_key_hash(inputs[feature.fold_key])
    label_value = first_value(inputs[label.column]) if label.column in inputs else tf.fill(tf.shape(value), "")
    analyzed = dict(analyze_label_prior(feature, value, key_hash, label_value),
                    classes=tf.constant(list(label.classes)))
    # named so the edge export reads them back (trainer.edge_export.read_analyzer_constants)
    analyzed = {key: tf.identity(tensor, name=constant_node_name(feature.name, key))
                for key, tensor in analyzed.items()}
    tft.vocabulary(value, vocab_filename=values_vocabulary_name(feature))
    return apply_label_prior(feature, analyzed["classes"], value, key_hash, analyzed)


def label_prior_prepare(feature: FeatureConfig, value: tf.Tensor) -> tf.Tensor:
    return strip(value)


def label_prior_edge_analysis(feature: FeatureConfig, constants: Mapping[str, np.ndarray],
                              tf_transform_output: Any) -> Dict[str, Any]:
    """A serving row is never a training row: the full training counts of every value
    seen in training, as a constant [values + 1, k] matrix (last row: unseen, zeros)
    behind a constant vocabulary, and the class prior."""
    from trainer.preprocessing import ConstantVocabulary  # it imports this module

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


def label_prior_apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
                      analysis: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
    """Edge: the full training counts of the value (a gather), then ``prior_outputs``."""
    counts = tf.gather(tf.constant(analysis["counts"]), analysis["lookup"](value))
    return prior_outputs(feature, counts, tf.constant(analysis["prior"]))


# Kinds that read several columns (plus the label) in Transform.
ROW_KINDS = {"label_prior": label_prior}
