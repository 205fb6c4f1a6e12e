"""Per-feature skew/drift distances between two statistics, measured by TFDV itself.

TFDV computes its L-infinity distance and its (histogram-based, approximate)
Jensen-Shannon divergence only inside ``validate_statistics``, and records the
measured value of every configured comparator in ``Anomalies.drift_skew_info``,
whether or not the threshold is crossed (verified on TFDV 1.16.1). So the
distances here are obtained by validating against a copy of the schema whose
comparators for the requested features are set with threshold 0 and reading
``drift_skew_info``: the numbers are exactly those TFDV would compare with the
schema's thresholds, with no re-implementation to drift apart from it.

Which measure a feature gets: the one its schema comparator names when it has
one; otherwise L-infinity for categorical features (BYTES, or INT marked
``is_categorical``) and Jensen-Shannon divergence for numeric ones. TFDV
reports L-infinity 0 for a numeric feature (it compares value counts only), so
a schema asking for it on a numeric feature is an error, not a silent zero.

A feature with no values on one side (absent, or all missing) gets no
distance from TFDV and so no record: ``monitoring.presence`` covers it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from monitoring.frames import schema_feature

Comparator = Literal["skew", "drift"]
Measure = Literal["l_infinity", "jensen_shannon", "missing_fraction"]
COMPARATORS: Tuple[Comparator, ...] = ("skew", "drift")

# measure -> the FeatureComparator field that configures it
COMPARATOR_FIELDS: Dict[str, str] = {"l_infinity": "infinity_norm",
                                     "jensen_shannon": "jensen_shannon_divergence"}
_MEASUREMENT_TYPES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "l_infinity",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "jensen_shannon",
}


@dataclass(frozen=True)
class FeatureDistance:
    """One measured distance of one feature, and the threshold it is held to.

    ``comparator``: 'skew' (span vs the training reference) or 'drift' (span vs
    the previous span). ``threshold`` is None when nothing sets one.
    A distance alarms when it is strictly above its threshold, as in TFDV.
    """
    feature: str
    comparator: Comparator
    measure: Measure
    distance: float
    threshold: Optional[float] = None

    @property
    def alarmed(self) -> bool:
        return self.threshold is not None and self.distance > self.threshold


def is_categorical(feature: schema_pb2.Feature) -> bool:
    """TFDV's notion: string values, or integers the schema marks categorical."""
    if feature.type == schema_pb2.BYTES or feature.HasField("bool_domain"):
        return True
    return feature.type == schema_pb2.INT and feature.int_domain.is_categorical


def _comparator(feature: schema_pb2.Feature, comparator: Comparator) -> schema_pb2.FeatureComparator:
    if comparator not in COMPARATORS:
        raise ValueError(f"comparator {comparator!r}: expected one of {COMPARATORS}")
    return getattr(feature, f"{comparator}_comparator")


def configured_thresholds(feature: schema_pb2.Feature, comparator: Comparator) -> Dict[str, float]:
    """The schema's own thresholds of ``feature``'s comparator, by measure ({} if none)."""
    message = _comparator(feature, comparator)
    return {measure: getattr(message, field).threshold
            for measure, field in COMPARATOR_FIELDS.items() if message.HasField(field)}


def measures_of(feature: schema_pb2.Feature, comparator: Comparator) -> Tuple[str, ...]:
    """The measures a feature is compared by: the schema's, else the default by type."""
    configured = tuple(configured_thresholds(feature, comparator))
    if "l_infinity" in configured and not is_categorical(feature):
        raise ValueError(f"feature {feature.name!r}: {comparator}_comparator sets infinity_norm, "
                         "which TFDV computes for categorical features only (it reports 0 for a "
                         f"{schema_pb2.FeatureType.Name(feature.type)} feature); use "
                         "jensen_shannon_divergence")
    if configured:
        return configured
    return ("l_infinity",) if is_categorical(feature) else ("jensen_shannon",)


def measuring_schema(schema: schema_pb2.Schema, features: Sequence[str],
                     comparator: Comparator) -> schema_pb2.Schema:
    """A copy of ``schema`` whose ``comparator`` measures ``features`` (threshold 0) and nothing else."""
    wanted = set(features)
    for name in wanted:
        schema_feature(schema, name)  # fails naming the feature when the schema lacks it
    probe = copy.deepcopy(schema)
    for feature in probe.feature:
        measures = measures_of(feature, comparator) if feature.name in wanted else ()
        feature.ClearField(f"{comparator}_comparator")
        for measure in measures:
            getattr(_comparator(feature, comparator), COMPARATOR_FIELDS[measure]).threshold = 0.0
    return probe


def feature_distances(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                      baseline: statistics_pb2.DatasetFeatureStatisticsList,
                      schema: schema_pb2.Schema, comparator: Comparator,
                      features: Optional[Sequence[str]] = None) -> List[FeatureDistance]:
    """TFDV's distances between a span's ``statistics`` and a ``baseline``.

    ``comparator='skew'``: baseline is the training reference and the span is
    the serving data (TFDV's ``serving_statistics``). ``'drift'``: baseline is
    the previous span (TFDV's ``previous_statistics``). ``features``: which to
    measure; default, those whose schema sets that comparator. Each record's
    threshold is the schema's own (None where the schema sets none).
    """
    if features is None:
        features = [f.name for f in schema.feature if configured_thresholds(f, comparator)]
    probe = measuring_schema(schema, features, comparator)
    if comparator == "skew":
        anomalies = tfdv.validate_statistics(baseline, probe, serving_statistics=statistics)
    else:
        anomalies = tfdv.validate_statistics(statistics, probe, previous_statistics=baseline)
    records = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        thresholds = configured_thresholds(schema_feature(schema, name), comparator)
        measurements = info.skew_measurements if comparator == "skew" else info.drift_measurements
        for measurement in measurements:
            measure = _MEASUREMENT_TYPES.get(measurement.type)
            if measure is None:
                continue  # a measure this package does not configure
            records.append(FeatureDistance(name, comparator, measure, float(measurement.value),
                                           thresholds.get(measure)))
    return sorted(records, key=lambda r: (r.feature, r.measure))
