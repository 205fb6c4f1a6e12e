"""Feature dropout: train for requests that carry only some features.

A browser page has a statement but no speaker, party or context. A model that
always saw them learns to lean on them and is unsound without them. So a
fixed share of training rows (drawn with the trainer seed, per batch) has every
feature outside ``trainer.feature_dropout_keep`` replaced by exactly what
Transform makes of a *missing* value: the transform graph itself is run once on
an all-missing row, so no kind needs its own notion of "missing" here, and a
serving request that omits (or sends "" for) those features is scored the same
way the dropped rows were trained.
"""
from __future__ import annotations

from typing import Dict, Iterable

import tensorflow as tf
import tensorflow_transform as tft

from common.config import PipelineConfig
from trainer import features


def missing_row(cfg: PipelineConfig, tf_transform_output: tft.TFTransformOutput) -> Dict[str, tf.Tensor]:
    """Transformed features of one row whose raw features are all missing."""
    layer = tf_transform_output.transform_features_layer()
    raw = {col: tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], features.tf_dtype(dtype)),
                                tf.constant([1, 1], tf.int64))
           for col, dtype in features.serving_feature_dtypes(cfg).items()}
    return {k: tf.convert_to_tensor(v) for k, v in layer(raw).items() if not isinstance(v, tf.SparseTensor)}


def dropped_keys(cfg: PipelineConfig, model_keys: Iterable[features.ModelInput]) -> list:
    """Transformed keys that dropout blanks: every input of a feature not kept."""
    keep = set(cfg.trainer.feature_dropout_keep)
    return [spec.key for spec in model_keys if spec.source not in keep]


def apply_dropout(ds: tf.data.Dataset, keys: Iterable[str], missing: Dict[str, tf.Tensor],
                  share: float, seed: int) -> tf.data.Dataset:
    """(features, label) batches with ``share`` of rows showing ``keys`` as missing."""
    keys = [k for k in keys if k in missing]
    if not share or not keys:
        return ds

    def blank(step, batch):
        feats, label = batch
        rows = tf.shape(label)[0]
        drop = tf.random.stateless_uniform([rows], seed=tf.stack([tf.cast(seed, tf.int64), step])) < share
        return blank_rows(feats, keys, missing, drop), label

    return ds.enumerate().map(blank, num_parallel_calls=tf.data.AUTOTUNE)


def blank_rows(feats: Dict[str, tf.Tensor], keys: Iterable[str], missing: Dict[str, tf.Tensor],
               drop: tf.Tensor) -> Dict[str, tf.Tensor]:
    """``feats`` with ``keys`` (those ``missing`` has) set to their missing value in the
    rows where the boolean vector ``drop`` is true."""
    rows = tf.shape(drop)[0]
    out = dict(feats)
    for key in keys:
        if key not in missing:
            continue
        x = feats[key]
        fill = tf.broadcast_to(tf.cast(missing[key], x.dtype), tf.shape(x))
        mask = tf.reshape(drop, tf.concat([[rows], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))
        out[key] = tf.where(mask, fill, x)
    return out
