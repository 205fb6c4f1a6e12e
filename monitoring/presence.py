"""Missing-value shifts: the share of examples without a feature, span vs baseline.

No TFDV distance sees missing values: L-infinity compares the value counts
and Jensen-Shannon the histogram of the values that are present, so a feature
going 50 % missing with its remaining values unchanged has distance ~0. The
schema's ``presence.min_fraction`` does catch it, but only as an absolute
floor the curator must guess (0.0 for taxi's ``company``, which is 34 %
missing in training), and only in one direction.

So the missing fraction is compared like the distances are: the measure is
|missing fraction of the span - missing fraction of the baseline|, which is
the L-infinity distance between the two {missing, present} distributions, and
its threshold is calibrated to the same false-alarm budget
(``monitoring.calibration``). The fractions are read from TFDV's statistics
(``num_examples`` and the feature's ``num_non_missing``), the same protos the
distances come from.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from monitoring.distances import Comparator, FeatureDistance
from monitoring.statistics import default_slice


def missing_fraction(statistics: statistics_pb2.DatasetFeatureStatisticsList, feature: str) -> float:
    """The share of examples without a value of ``feature``; 1.0 when the statistics lack it.

    A feature that never occurs in a span of tf.Examples is absent from its
    statistics altogether: that is the extreme of missing, not an error.
    """
    dataset = default_slice(statistics)
    if dataset.num_examples == 0:
        raise ValueError(f"feature {feature!r}: the statistics describe no examples")
    view = tfdv.DatasetView(dataset).get_feature(feature)
    common = view.common_statistics() if view is not None else None
    if common is None:
        return 1.0
    return 1.0 - common.num_non_missing / dataset.num_examples


def presence_distances(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                       baseline: statistics_pb2.DatasetFeatureStatisticsList,
                       features: Sequence[str], comparator: Comparator,
                       thresholds: Optional[Mapping[str, float]] = None) -> List[FeatureDistance]:
    """|missing fraction of the span - of the baseline| per feature, as ``missing_fraction`` records.

    ``thresholds``: feature -> calibrated threshold (``Calibration.thresholds``);
    a feature without one gets threshold None (measured, never alarmed).
    """
    thresholds = thresholds or {}
    return [FeatureDistance(name, comparator, "missing_fraction",
                            abs(missing_fraction(statistics, name) - missing_fraction(baseline, name)),
                            thresholds.get(name))
            for name in features]
