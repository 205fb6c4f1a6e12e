"""String ops the text-like kinds share, in the ops both edge runtimes run.

The edge runtimes lack several string ops (measured for TF.js 4.17: no
StringLower, StringStrip, ReduceJoin, AsString, StringLength,
UnsortedSegmentSum) and the TF.js converter lower-cases every regex pattern it
loads, so:

* Lower-casing is ASCII (``tf.strings.lower``'s default), done by Transform's
  ``column`` step and, at the edge, by the caller (the extension's scorer.js
  does the same ASCII mapping, and folds the typographic apostrophe to "'").
  Unicode lower-casing would differ from it only on non-ASCII capitals, which
  normalisation then drops anyway, except for the few that lower-case to
  ASCII (the Kelvin sign K -> k): ASCII on both sides is exact.
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
from typing import Any, Iterator, Sequence, Tuple

import tensorflow as tf

SPACE = r"[\t\n\v\f\r ]"  # what tf.strings.strip strips (ASCII whitespace)
# U+2019, how pages (and some LIAR rows) write "don't". The TF.js converter decodes regex
# patterns as Latin-1 bytes, so a non-ASCII pattern never matches there: the caller folds
# it to "'" along with the lower-casing (edge/runtime.py, extension/scorer.js).
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
    return tf.strings.regex_replace(text, f"^{SPACE}+|{SPACE}+$", "")


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

