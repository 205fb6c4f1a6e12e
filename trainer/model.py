"""The Keras model: wide & deep over Transform's outputs.

Wide part: a linear weight per categorical id and per dense input, which
memorises strong single-feature rules (payment type). Deep part: embeddings
plus dense inputs through an MLP, which learns the interactions (fare level
within a payment type). Both add into one logit per class.

A bag of ids (text tokens and n-grams, multi-valued categories) enters both
parts as the mean of its ids' weights: the wide part is then a bag-of-words
linear model, the deep part a fastText-style averaged embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from common.config import BAG_POOLINGS, TrainerConfig
from trainer.features import ModelInput
from trainer.keras_autograph import skip_tf_keras_conversion


class BagMean(tf.keras.layers.Layer):
    """Mean of the embeddings of a padded id bag (id 0 = padding); an empty
    bag (no text, no subjects) gives zeros, not the NaN of 0/0.

    ``pooling="sqrtn"`` divides the sum by sqrt(n) instead of n (TF's embedding
    combiner of that name). For the wide part that is a linear model over the
    bag's L2-normalised counts: with a mean, a statement of 40 words is exactly as
    sure as one of 4 with the same average word; with sqrt(n), consistent evidence
    adds up. On LIAR's training folds (statement only) it raised the precision of
    the most confident 30-40 % of leans by 0.007-0.010 (docs/liar.md); the same
    pooling in the deep part lowered it, so the deep part keeps the mean.

    The masked sum is a batched matmul ``mask[n, 1, L] @ emb[n, L, d]``, not
    ``sum(emb * mask)``: TF.js's CPU backend (the browser extension) runs a
    broadcast product index by index, about a fifth of a statement's time,
    and a matmul as one plain loop. TensorFlow runs both alike.
    """

    def __init__(self, cardinality: int, dim: int, token_dropout: float = 0.0, pooling: str = "mean",
                 **kwargs):
        super().__init__(**kwargs)
        if pooling not in BAG_POOLINGS:
            raise ValueError(f"BagMean pooling: expected {' or '.join(map(repr, BAG_POOLINGS))}, got {pooling!r}")
        self.cardinality, self.dim, self.token_dropout = cardinality, dim, token_dropout
        self.pooling = pooling
        self.embedding = tf.keras.layers.Embedding(cardinality, dim)

    def call(self, ids, training=None):
        mask = tf.cast(ids > 0, tf.float32)[:, None, :]
        if training and self.token_dropout:
            # Word dropout: each training row forgets this share of its ids, so the
            # bag's weights cannot memorise whole statements. Inference (every
            # export) never takes this branch.
            keep = tf.random.uniform(tf.shape(mask)) >= self.token_dropout
            mask = mask * tf.cast(keep, tf.float32)
        total = tf.squeeze(tf.matmul(mask, self.embedding(ids)), axis=1)
        count = tf.maximum(tf.reduce_sum(mask, axis=2), 1.0)
        return total / (tf.sqrt(count) if self.pooling == "sqrtn" else count)

    def get_config(self):
        return {**super().get_config(), "cardinality": self.cardinality, "dim": self.dim,
                "token_dropout": self.token_dropout, "pooling": self.pooling}


@dataclass(frozen=True)
class HyperParameters:
    """What the Tuner searches and the Trainer uses."""
    learning_rate: float
    hidden_units: int
    num_layers: int
    embedding_dim: int
    dropout: float
    token_dropout: float = 0.0
    weight_averaging: float = 0.0
    wide_bag_pooling: str = "mean"

    @classmethod
    def from_trainer_config(cls, trainer: TrainerConfig) -> "HyperParameters":
        return cls(trainer.learning_rate, trainer.hidden_units, trainer.num_layers,
                   trainer.embedding_dim, trainer.dropout, trainer.token_dropout,
                   trainer.weight_averaging, trainer.wide_bag_pooling)

    def updated(self, values: Mapping[str, Any]) -> "HyperParameters":
        """These hyperparameters with tuned ``values`` (unknown keys ignored)."""
        known = {k: v for k, v in values.items() if k in self.__dataclass_fields__}
        return replace(self, **known)


class FoldedCrossEntropy(tf.keras.losses.Loss):
    """Multi-class cross-entropy plus ``weight`` x the binary cross-entropy of
    the probability summed over ``positive`` classes (the binary fold).

    Why: LIAR's six labels are ordered, and its headline binary figure folds
    them (half-true and above). Plain six-way cross-entropy treats "false" for
    a "pants-fire" statement as wrong as "true"; the fold term also rewards the
    right side of the fold. The model still outputs six probabilities, so every
    export and consumer stays as it is. Measured on LIAR dev splits it did not
    help (docs/liar.md, "Model selection"), so it is off unless a config sets it.
    """

    def __init__(self, positive: Sequence[int], weight: float, **kwargs):
        # Explicit super(): Keras may re-create the loss inside an AutoGraph-converted
        # train step, where the zero-argument form has no __class__ cell.
        super(FoldedCrossEntropy, self).__init__(**kwargs)
        self.positive, self.weight = [int(i) for i in positive], float(weight)

    @tf.autograph.experimental.do_not_convert
    def call(self, y_true, y_pred):
        labels = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        multi = tf.keras.losses.sparse_categorical_crossentropy(labels, y_pred)
        is_positive = tf.reduce_any(labels[:, None] == tf.constant(self.positive, tf.int64)[None, :], axis=1)
        folded = tf.reduce_sum(tf.gather(y_pred, self.positive, axis=1), axis=1, keepdims=True)
        binary = tf.keras.losses.binary_crossentropy(tf.cast(is_positive, tf.float32)[:, None], folded)
        return multi + self.weight * binary

    def get_config(self):
        return {**super().get_config(), "positive": self.positive, "weight": self.weight}


def deep_embedding_layers(inputs: Sequence[ModelInput]) -> list:
    """Names of the embedding layers whose outputs open the deep tower, in its input
    order; the dense inputs (if any) follow them as one block."""
    return [f"embed_{spec.key}" for spec in inputs if spec.length or spec.cardinality]


def build_model(inputs: Sequence[ModelInput], hparams: HyperParameters, num_classes: int,
                fold_positive: Sequence[int] = (), fold_weight: float = 0.0,
                members: int = 1) -> tf.keras.Model:
    """A compiled wide & deep classifier over ``inputs`` (transformed feature keys).

    With ``fold_weight`` > 0 (multi-class only), the loss also scores the binary
    fold over ``fold_positive`` class ids (``FoldedCrossEntropy``). ``members`` > 1
    builds the shape of a fused ensemble (``trainer.ensemble``): every embedding
    and hidden layer that many times as wide."""
    skip_tf_keras_conversion()  # every model is built here, before its first step
    hparams = replace(hparams, hidden_units=hparams.hidden_units * members)
    out_units = 1 if num_classes == 2 else num_classes
    keras_inputs: Dict[str, tf.keras.Input] = {}
    wide_terms, deep_terms, dense_values = [], [], []
    for spec in inputs:
        if spec.length:
            x = tf.keras.Input(shape=(spec.length,), name=spec.key, dtype=tf.int64)
            keras_inputs[spec.key] = x
            wide_terms.append(BagMean(spec.cardinality, out_units, hparams.token_dropout,
                                      hparams.wide_bag_pooling, name=f"wide_{spec.key}")(x))
            deep_terms.append(BagMean(spec.cardinality, hparams.embedding_dim * members, hparams.token_dropout,
                                      name=f"embed_{spec.key}")(x))
        elif spec.cardinality:
            x = tf.keras.Input(shape=(), name=spec.key, dtype=tf.int64)
            keras_inputs[spec.key] = x
            # Transform guarantees ids in [0, cardinality): vocab + OOV, buckets + missing.
            wide_terms.append(tf.keras.layers.Embedding(spec.cardinality, out_units,
                                                        name=f"wide_{spec.key}")(x))
            dim = min(hparams.embedding_dim, spec.cardinality) * members
            deep_terms.append(tf.keras.layers.Embedding(spec.cardinality, dim,
                                                        name=f"embed_{spec.key}")(x))
        else:
            shape = () if spec.width == 1 else (spec.width,)
            x = tf.keras.Input(shape=shape, name=spec.key, dtype=tf.float32)
            keras_inputs[spec.key] = x
            dense_values.append(tf.keras.layers.Reshape((spec.width,))(x))
    if dense_values:
        dense = tf.keras.layers.Concatenate()(dense_values) if len(dense_values) > 1 else dense_values[0]
        wide_terms.append(tf.keras.layers.Dense(out_units, name="wide_dense")(dense))
        deep_terms.append(dense)
    deep = tf.keras.layers.Concatenate()(deep_terms) if len(deep_terms) > 1 else deep_terms[0]
    for i in range(hparams.num_layers):
        deep = tf.keras.layers.Dense(hparams.hidden_units, activation="relu", name=f"deep_{i}")(deep)
        if hparams.dropout:
            deep = tf.keras.layers.Dropout(hparams.dropout)(deep)
    logits = tf.keras.layers.Add()(wide_terms + [tf.keras.layers.Dense(out_units, name="deep_out")(deep)])
    activation = "sigmoid" if out_units == 1 else "softmax"
    outputs = tf.keras.layers.Activation(activation, name="outputs")(logits)
    model = tf.keras.Model(keras_inputs, outputs)
    fold = FoldedCrossEntropy(fold_positive, fold_weight) if out_units > 1 and fold_weight else None
    _compile(model, hparams, binary=out_units == 1, loss=fold)
    return model


def _optimizer(hparams: HyperParameters) -> tf.keras.optimizers.Optimizer:
    """Adam; with ``weight_averaging`` (a momentum in (0, 1)) Keras keeps an exponential
    moving average of the weights and ``fit`` ends by swapping it in: one model with
    much of the variance reduction of an ensemble of its recent checkpoints."""
    if hparams.weight_averaging:
        return tf.keras.optimizers.Adam(hparams.learning_rate, use_ema=True,
                                        ema_momentum=hparams.weight_averaging)
    return tf.keras.optimizers.Adam(hparams.learning_rate)


def _compile(model: tf.keras.Model, hparams: HyperParameters, binary: bool,
             loss: Optional[tf.keras.losses.Loss] = None) -> None:
    if binary:
        loss = tf.keras.losses.BinaryCrossentropy()
        metrics = [tf.keras.metrics.BinaryAccuracy(name="accuracy"), tf.keras.metrics.AUC(name="auc")]
    else:
        loss = loss or tf.keras.losses.SparseCategoricalCrossentropy()
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=_optimizer(hparams), loss=loss, metrics=metrics)
