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
from typing import Any, Dict, Mapping, Sequence

import tensorflow as tf

from pipeline.config import TrainerConfig
from trainer.features import ModelInput
from trainer.keras_autograph import skip_tf_keras_conversion


class BagMean(tf.keras.layers.Layer):
    """Mean of the embeddings of a padded id bag (id 0 = padding); an empty
    bag (no text, no subjects) gives zeros, not the NaN of 0/0.

    The masked sum is a batched matmul ``mask[n, 1, L] @ emb[n, L, d]``, not
    ``sum(emb * mask)``: TF.js's CPU backend (the browser extension) runs a
    broadcast product index by index, about a fifth of a statement's time,
    and a matmul as one plain loop. TensorFlow runs both alike.
    """

    def __init__(self, cardinality: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cardinality, self.dim = cardinality, dim
        self.embedding = tf.keras.layers.Embedding(cardinality, dim)

    def call(self, ids):
        mask = tf.cast(ids > 0, tf.float32)[:, None, :]
        total = tf.squeeze(tf.matmul(mask, self.embedding(ids)), axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=2), 1.0)

    def get_config(self):
        return {**super().get_config(), "cardinality": self.cardinality, "dim": self.dim}


@dataclass(frozen=True)
class HyperParameters:
    """What the Tuner searches and the Trainer uses."""
    learning_rate: float
    hidden_units: int
    num_layers: int
    embedding_dim: int
    dropout: float

    @classmethod
    def from_trainer_config(cls, trainer: TrainerConfig) -> "HyperParameters":
        return cls(trainer.learning_rate, trainer.hidden_units, trainer.num_layers,
                   trainer.embedding_dim, trainer.dropout)

    def updated(self, values: Mapping[str, Any]) -> "HyperParameters":
        """These hyperparameters with tuned ``values`` (unknown keys ignored)."""
        known = {k: v for k, v in values.items() if k in self.__dataclass_fields__}
        return replace(self, **known)


def build_model(inputs: Sequence[ModelInput], hparams: HyperParameters, num_classes: int) -> tf.keras.Model:
    """A compiled wide & deep classifier over ``inputs`` (transformed feature keys)."""
    skip_tf_keras_conversion()  # every model is built here, before its first step
    out_units = 1 if num_classes == 2 else num_classes
    keras_inputs: Dict[str, tf.keras.Input] = {}
    wide_terms, deep_terms, dense_values = [], [], []
    for spec in inputs:
        if spec.length:
            x = tf.keras.Input(shape=(spec.length,), name=spec.key, dtype=tf.int64)
            keras_inputs[spec.key] = x
            wide_terms.append(BagMean(spec.cardinality, out_units, name=f"wide_{spec.key}")(x))
            deep_terms.append(BagMean(spec.cardinality, hparams.embedding_dim, name=f"embed_{spec.key}")(x))
        elif spec.cardinality:
            x = tf.keras.Input(shape=(), name=spec.key, dtype=tf.int64)
            keras_inputs[spec.key] = x
            # Transform guarantees ids in [0, cardinality): vocab + OOV, buckets + missing.
            wide_terms.append(tf.keras.layers.Embedding(spec.cardinality, out_units,
                                                        name=f"wide_{spec.key}")(x))
            dim = min(hparams.embedding_dim, spec.cardinality)
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
    _compile(model, hparams.learning_rate, binary=out_units == 1)
    return model


def _compile(model: tf.keras.Model, learning_rate: float, binary: bool) -> None:
    if binary:
        loss = tf.keras.losses.BinaryCrossentropy()
        metrics = [tf.keras.metrics.BinaryAccuracy(name="accuracy"), tf.keras.metrics.AUC(name="auc")]
    else:
        loss = tf.keras.losses.SparseCategoricalCrossentropy()
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
