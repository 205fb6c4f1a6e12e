"""The feature-kind registry: config ``kind`` name -> ``FeatureKind``.

The one registry Transform (``trainer.preprocessing``), the model's inputs
(``trainer.features``) and the edge graph (``trainer.edge_graph``) dispatch
through. A new kind: one module in ``trainer/kinds/`` and one line here.
"""
from __future__ import annotations

from typing import Dict

from common.config import FeatureConfig
from trainer.kinds import bucketized, categorical, label_prior, multi_categorical, numeric, text, timestamp
from trainer.kinds.base import FeatureKind

KINDS: Dict[str, FeatureKind] = {
    "numeric": numeric.KIND,
    "categorical": categorical.KIND,
    "bucketized": bucketized.KIND,
    "timestamp": timestamp.KIND,
    "text": text.KIND,
    "multi_categorical": multi_categorical.KIND,
    "label_prior": label_prior.KIND,
}


def feature_kind(feature: FeatureConfig) -> FeatureKind:
    """The ``FeatureKind`` of a config feature."""
    try:
        return KINDS[feature.kind]
    except KeyError:
        raise ValueError(f"feature {feature.name!r}: unknown kind {feature.kind!r}; "
                         f"expected one of {sorted(KINDS)}") from None
