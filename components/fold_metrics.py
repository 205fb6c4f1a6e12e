"""False-positive and false-negative rates of a multi-class model's binary fold, for TFMA.

Why a custom metric: the fairness question for LIAR is binary ("was a false
statement judged true?"), while the honest model is six-way. TFMA 0.47 has no
class fold; its one-vs-rest FPR/FNR with ``top_k: 1`` report 1.0 on slices
where a class is never the top prediction. This Keras metric folds inside TFMA's
own evaluation (TFMA computes custom ``tf_keras`` metrics named by ``module`` in
its MetricConfig), so the rates are sliced, stored and read back like every
other TFMA metric.

A row is positive when its label is one of ``positive_class_ids``; it is
predicted positive when the probabilities of those classes sum above 0.5, the
same rule as the reported binary accuracy (``components.classification_metrics``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import tensorflow as tf
import tf_keras

RATES = ("fpr", "fnr")


class FoldedRate(tf_keras.metrics.Metric):
    """``fpr``: share of negative rows predicted positive; ``fnr``: share of positive rows
    predicted negative. Rows carry a sparse class id (one-hot labels are accepted too)."""

    def __init__(self, positive_class_ids: Sequence[int] = (), rate: str = "fpr",
                 name: Optional[str] = None, dtype: Any = None) -> None:
        if rate not in RATES:
            raise ValueError(f"FoldedRate rate {rate!r}: expected one of {RATES}")
        if not positive_class_ids:
            raise ValueError("FoldedRate: expected at least one positive class id")
        super().__init__(name=name or rate, dtype=dtype)
        self.positive_class_ids = [int(i) for i in positive_class_ids]
        self.rate = rate
        self.errors = self.add_weight(name="errors", initializer="zeros")
        self.rows = self.add_weight(name="rows", initializer="zeros")

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: Optional[tf.Tensor] = None):
        y_pred = tf.convert_to_tensor(y_pred, tf.float32)
        batch = tf.shape(y_pred)[0]
        labels = tf.reshape(tf.convert_to_tensor(y_true), [batch, -1])
        class_id = tf.cond(tf.shape(labels)[1] > 1,
                           lambda: tf.argmax(labels, axis=1),
                           lambda: tf.cast(tf.round(tf.cast(labels[:, 0], tf.float32)), tf.int64))
        positive_ids = tf.constant(self.positive_class_ids, tf.int64)
        is_positive = tf.reduce_any(tf.equal(class_id[:, None], positive_ids[None, :]), axis=1)
        predicted_positive = tf.reduce_sum(tf.gather(y_pred, positive_ids, axis=1), axis=1) > 0.5
        if self.rate == "fpr":
            counted, wrong = tf.logical_not(is_positive), predicted_positive
        else:
            counted, wrong = is_positive, tf.logical_not(predicted_positive)
        weight = (tf.ones([batch], tf.float32) if sample_weight is None
                  else tf.reshape(tf.cast(sample_weight, tf.float32), [batch]))
        counted = tf.cast(counted, tf.float32) * weight
        self.rows.assign_add(tf.reduce_sum(counted))
        self.errors.assign_add(tf.reduce_sum(counted * tf.cast(wrong, tf.float32)))

    def result(self) -> tf.Tensor:
        return tf.math.divide_no_nan(self.errors, self.rows)

    def get_config(self) -> Dict[str, Any]:
        return dict(super().get_config(), positive_class_ids=self.positive_class_ids, rate=self.rate)
