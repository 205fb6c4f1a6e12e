"""True classes of feedback labels per label kind, and predicted classes of logged outputs."""
import dataclasses

import pytest

from common.config import LabelConfig
from monitoring.labelled import accuracy_floor, true_class
from monitoring.predictions import all_shares, l_infinity, output_drift, predicted_class, shares_by_version

RATIO = LabelConfig(name="big_tipper", kind="ratio_threshold", column="tips", denominator="fare", fraction=0.2)
CLASSES = LabelConfig(name="truth", kind="classes", column="label",
                      classes=("false", "half-true", "true"), positive_classes=("half-true", "true"))


def test_ratio_labels_use_the_logged_denominator_as_transform_does():
    assert true_class(RATIO, 2.01, {"fare": 10.0}) == 1
    assert true_class(RATIO, 2.0, {"fare": 10.0}) == 0          # strictly greater, as make_label
    assert true_class(RATIO, 0.5, {}) == 1                        # a missing fare counts as 0


def test_class_labels_map_names_to_ids_or_to_the_binary_fold():
    multi = dataclasses.replace(CLASSES, fold_to_binary=False)
    assert [true_class(multi, c, {}) for c in CLASSES.classes] == [0, 1, 2]
    assert [true_class(CLASSES, c, {}) for c in CLASSES.classes] == [0, 1, 1]
    assert true_class(LabelConfig(name="y", kind="column", column="y"), 2, {}) == 2
    with pytest.raises(ValueError, match="label 'maybe': expected one of label.classes"):
        true_class(CLASSES, "maybe", {})


def test_predicted_classes_and_their_shares():
    assert predicted_class([0.51], 2) == 1 and predicted_class([0.5], 2) == 0
    assert predicted_class([0.2, 0.5, 0.3], 3) == 1 and predicted_class([0.4, 0.6], 2) == 1
    with pytest.raises(ValueError, match="output of 2 values: expected 1 .* or 3"):
        predicted_class([0.4, 0.6], 3)
    outputs, versions = [[0.9], [0.1], [0.8], [0.7]], [1, 1, 2, 2]
    assert shares_by_version(outputs, versions, 2) == {1: (0.5, 0.5), 2: (0.0, 1.0)}
    assert all_shares(outputs, 2) == (0.25, 0.75)
    assert output_drift({1: (0.5, 0.5), 2: (0.0, 1.0)}, (0.25, 0.75)) == {1: 0.25, 2: 0.25}
    assert l_infinity((0.1, 0.9), (0.6, 0.4)) == pytest.approx(0.5)


def test_the_accuracy_floor_defaults_to_the_blessing_floor(taxi_config):
    assert accuracy_floor(taxi_config) == taxi_config.evaluation.min_accuracy
    monitoring = dataclasses.replace(taxi_config.monitoring, min_labelled_accuracy=0.6)
    assert accuracy_floor(dataclasses.replace(taxi_config, monitoring=monitoring)) == 0.6
