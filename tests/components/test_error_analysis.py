"""components.error_analysis: the binary fold's calibration in the analysis."""
import numpy as np

from common.loader import load_config
from components.error_analysis import analyse
from testing.liar_fixture import LIAR_CONFIG


def test_error_analysis_reports_the_calibration_of_the_binary_fold():
    liar_cfg = load_config(LIAR_CONFIG, require_data=False)  # six classes, half-true and above positive
    probabilities = np.array([[0.1, 0.1, 0.1, 0.3, 0.2, 0.2], [0.4, 0.3, 0.1, 0.1, 0.05, 0.05]])
    result = analyse(liar_cfg, probabilities, np.array([4, 0]))
    filled = [b for b in result["calibration"]["bins"] if b["examples"]]
    assert [(round(b["mean_predicted"], 6), b["positive_share"]) for b in filled] == [(0.2, 0.0), (0.7, 1.0)]
