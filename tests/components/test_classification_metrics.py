"""components.classification_metrics: the shared classification figures and calibration bins."""
import numpy as np
import pytest

from components import classification_metrics as cm
from testing import liar_fixture


def test_classification_scores_and_binary_fold():
    labels = np.array([0, 1, 2, 3, 4, 5])
    probabilities = np.eye(6)[[0, 1, 1, 3, 5, 5]]
    predictions = cm.predicted_classes(probabilities)
    folded = (cm.positive_probability(probabilities, [3, 4, 5]) > 0.5).astype(int)
    result = cm.scores(labels, predictions, 6, cm.fold(labels, [3, 4, 5]), folded)
    assert result["accuracy"] == pytest.approx(4 / 6) and result["binary_accuracy"] == 1.0
    assert result["confusion_matrix"][2][1] == 1
    assert cm.predicted_classes(np.array([[0.2], [0.7]])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="split eval: label 'maybe' is not one of"):
        cm.class_ids([b"maybe"], liar_fixture.CLASSES, "split eval")


def test_calibration_bins_predicted_against_actual_and_weights_the_gaps():
    p = np.array([0.05, 0.15, 0.15, 0.55, 0.95, 1.0])
    y = np.array([0, 0, 1, 1, 1, 1])
    result = cm.calibration(p, y, bins=10)
    bins = result["bins"]
    assert [b["examples"] for b in bins] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 falls in the last bin
    assert bins[1]["mean_predicted"] == pytest.approx(0.15) and bins[1]["positive_share"] == 0.5
    assert "mean_predicted" not in bins[2]  # an empty bin has no mean
    # gaps: 0.05 (1 row), 0.35 (2), 0.45 (1), 0.025 (2) -> weighted by rows over 6
    assert result["expected_calibration_error"] == pytest.approx((0.05 + 0.7 + 0.45 + 0.05) / 6)
    assert cm.calibration(np.array([0.3, 0.7]), np.array([0, 1]), bins=2)["expected_calibration_error"] == \
        pytest.approx(0.3)
