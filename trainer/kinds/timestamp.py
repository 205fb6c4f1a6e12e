"""``timestamp``: calendar parts (UTC) of epoch seconds, as small integer ids."""
from __future__ import annotations

from typing import Dict, List, Mapping

import tensorflow as tf

from common.config import FeatureConfig
from trainer.kinds.base import Analysis, FeatureKind, ModelInput
from trainer.names import transformed_name

_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400
_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1
_PART_SIZES = {"hour": 24, "weekday": 7, "month": 12}


def prepare(feature: FeatureConfig, values: tf.Tensor) -> tf.Tensor:
    return tf.cast(values, tf.int64)


def apply(feature: FeatureConfig, value: tf.Tensor, present: tf.Tensor,
          analysis: Analysis) -> Dict[str, tf.Tensor]:
    """Calendar parts as small integer ids; missing reads as 0 (1970-01-01 00:00).

    The arithmetic is int32 (TFLite has no int64 division; TF.js has no int64
    at all), on seconds clamped to the int32 range: 1901-12-13 .. 2038-01-19.
    """
    clamped = tf.clip_by_value(value, tf.constant(_INT32_MIN, tf.int64), tf.constant(_INT32_MAX, tf.int64))
    seconds = tf.cast(clamped, tf.int32)
    days = tf.math.floordiv(seconds, _SECONDS_PER_DAY)
    parts = {
        "hour": lambda: tf.math.floormod(tf.math.floordiv(seconds, _SECONDS_PER_HOUR), 24),
        "weekday": lambda: tf.math.floormod(days + 3, 7),  # 1970-01-01 was a Thursday; Monday = 0
        "month": lambda: month_from_days(days) - 1,
    }
    return {transformed_name(f"{feature.name}_{part}"): tf.cast(parts[part](), tf.int64)
            for part in feature.parts}


def month_from_days(days: tf.Tensor) -> tf.Tensor:
    """Month 1..12 of days since 1970-01-01 (Hinnant's civil-from-days, graph-only ops)."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return tf.where(mp < 10, mp + 3, mp - 9)


def model_inputs(feature: FeatureConfig, vocabulary_sizes: Mapping[str, int],
                 label_classes: int) -> List[ModelInput]:
    return [ModelInput(transformed_name(f"{feature.name}_{part}"), _PART_SIZES[part], feature.name)
            for part in feature.parts]


KIND = FeatureKind(prepare=prepare, apply=apply, model_inputs=model_inputs)
