"""The lean's calibration map, its "not sure" threshold and how the bundler writes them."""
import json

import numpy as np
import pytest

from common.loader import load_config
from edge import browser_extension, calibration
from edge.calibration import Calibration, CalibrationError, Lean


def test_isotonic_pools_adjacent_violators_into_increasing_blocks():
    fitted = calibration.fit_isotonic([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 1, 0, 0, 1, 1])
    # (0.1: 0) | (0.2, 0.3, 0.4: 1/3) | (0.5, 0.6: 1)
    assert fitted.x == pytest.approx([0.1, 0.3, 0.55])
    assert fitted.y == pytest.approx([0.0, 1 / 3, 1.0])


def test_isotonic_gives_equal_scores_one_breakpoint():
    fitted = calibration.fit_isotonic([0.2, 0.2, 0.2, 0.7], [1, 0, 0, 1])
    assert fitted.x == pytest.approx([0.2, 0.7]) and fitted.y == pytest.approx([1 / 3, 1.0])


def test_isotonic_is_monotone_and_calibrated_on_its_own_rows():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    positive = (rng.uniform(size=2000) < 0.2 + 0.6 * p).astype(int)
    fitted = calibration.fit_isotonic(p, positive)
    assert np.all(np.diff(fitted.x) > 0) and np.all(np.diff(fitted.y) > 0)
    mapped = calibration.apply(fitted, p)
    assert mapped.mean() == pytest.approx(positive.mean(), abs=0.02)


def test_apply_interpolates_and_clamps_at_both_ends():
    c = Calibration(x=[0.2, 0.6], y=[0.1, 0.9])
    np.testing.assert_allclose(calibration.apply(c, [0.0, 0.2, 0.4, 0.6, 1.0]), [0.1, 0.1, 0.5, 0.9, 0.9])


def test_threshold_is_the_lowest_confidence_whose_shown_leans_reach_the_precision():
    # Calibrated P(true) and truths: the two most confident are right, the third wrong, the fourth right.
    calibrated = [0.95, 0.1, 0.8, 0.35, 0.52]
    positive = [1, 0, 0, 0, 1]
    # confidences 0.95, 0.9, 0.8, 0.65, 0.52 -> cumulative accuracy 1, 1, 2/3, 3/4, 4/5
    assert calibration.choose_threshold(calibrated, positive, 0.75, min_shown=1) == pytest.approx(0.52)
    assert calibration.choose_threshold(calibrated, positive, 0.9, min_shown=1) == pytest.approx(0.9)
    # At least three shown verdicts: 0.9 shows two, so the best with enough support is 0.52.
    assert calibration.choose_threshold(calibrated, positive, 0.75, min_shown=3) == pytest.approx(0.52)
    assert calibration.choose_threshold(calibrated, positive, 0.85, min_shown=3) > 1.0  # unreachable


def test_threshold_never_cuts_between_equal_confidences():
    # Four rows at confidence 0.8 (three right) after one right at 0.9: cutting inside them is not allowed.
    calibrated = [0.9, 0.8, 0.8, 0.2, 0.2]
    positive = [1, 1, 1, 0, 1]
    assert calibration.choose_threshold(calibrated, positive, 0.8, min_shown=1) == pytest.approx(0.8)
    assert calibration.choose_threshold(calibrated, positive, 0.81, min_shown=1) == pytest.approx(0.9)


def test_wilson_lower_bound_matches_the_textbook_values():
    # 80 right of 100 at 95 % one-sided, z = 1.6449: (0.8 + z^2/200 - z * sqrt(0.0016 + z^2/40000))
    # / (1 + z^2/100) = 0.7267 (the lower end of the two-sided 90 % Wilson interval); the share without a level
    np.testing.assert_allclose(calibration.wilson_lower_bound([80], [100], 0.95), [0.72670], atol=1e-4)
    np.testing.assert_allclose(calibration.wilson_lower_bound([80, 3], [100, 4], 0.0), [0.8, 0.75])
    # the bound tightens towards the share as the count grows
    bounds = calibration.wilson_lower_bound([70, 700, 7000], [100, 1000, 10000], 0.95)
    assert bounds[0] < bounds[1] < bounds[2] < 0.7


def test_a_bound_on_the_precision_shows_fewer_leans_that_are_right_more_often():
    p, positive, fold = _synthetic(5000, seed=3)
    point = calibration.fit_lean(p, positive, fold, precision=0.75)
    bounded = calibration.fit_lean(p, positive, fold, precision=0.75, bound=0.95)
    assert bounded.bound == 0.95 and point.bound == 0.0
    assert bounded.threshold > point.threshold
    assert bounded.cross_fitted["coverage"] < point.cross_fitted["coverage"]
    # the bound holds on the folds: the shown leans' accuracy clears the precision by the margin
    shown = bounded.cross_fitted["shown"]
    margin = 0.75 - calibration.wilson_lower_bound([0.75 * shown], [shown], 0.95)[0]
    assert bounded.cross_fitted["accuracy"] >= 0.75 + 0.8 * margin
    with pytest.raises(CalibrationError, match="bound: expected 0"):
        calibration.fit_lean(p, positive, fold, precision=0.75, bound=1.5)


def _sharper(p, factor):
    logit = np.log(p) - np.log1p(-p)
    return 1 / (1 + np.exp(-factor * logit))


def test_transfer_moves_the_map_to_a_sharper_models_scale():
    """A shipped model 1.5x sharper in logit than the fold models: the moved map gives its
    scores what the fold map gives the fold models' scores of the same rows."""
    rng = np.random.default_rng(5)
    fold_scores = np.clip(rng.beta(4, 4, size=4000), 0.01, 0.99)
    positive = (rng.uniform(size=4000) < fold_scores ** 1.3).astype(int)  # not calibrated as is
    fitted = calibration.fit_isotonic(fold_scores, positive)
    moved = calibration.transfer(fitted, fold_scores, _sharper(fold_scores, 1.5))
    probe = np.linspace(0.2, 0.8, 61)
    np.testing.assert_allclose(calibration.apply(moved, _sharper(probe, 1.5)), calibration.apply(fitted, probe),
                               atol=0.02)
    assert np.all(np.diff(moved.x) > 0)
    # the same scale moves nothing (up to the quantile grid)
    same = calibration.transfer(fitted, fold_scores, fold_scores)
    np.testing.assert_allclose(calibration.apply(same, probe), calibration.apply(fitted, probe), atol=0.01)
    with pytest.raises(CalibrationError, match="shipped_in_sample: expected at least 50"):
        calibration.transfer(fitted, fold_scores, [0.5] * 10)


def test_a_transferred_lean_shows_a_sharper_model_as_many_leans_as_the_folds_promised():
    p, positive, fold = _synthetic(5000, seed=7)
    shipped_p = _sharper(np.clip(p, 0.001, 0.999), 1.4)  # the whole-file model on the same rows
    plain = calibration.fit_lean(p, positive, fold, precision=0.85)
    moved = calibration.fit_lean(p, positive, fold, precision=0.85, in_sample=(p, shipped_p))
    assert moved.threshold == plain.threshold and moved.transfer == {"fitted_rows": 5000, "shipped_rows": 5000}
    promised = plain.cross_fitted["coverage"]
    unmoved = calibration.selective(calibration.apply(plain.calibration, shipped_p), positive, plain.threshold)
    shown = calibration.selective(calibration.apply(moved.calibration, shipped_p), positive, moved.threshold)
    assert unmoved["coverage"] > promised + 0.05  # the sharper model, untransferred, shows too many
    assert abs(shown["coverage"] - promised) < 0.03 and shown["accuracy"] >= 0.84


def test_cli_transfers_with_the_shipped_in_sample_scores(tmp_path, capsys):
    p, positive, fold = _synthetic(1000)
    scores = tmp_path / "oof.json"
    scores.write_text(json.dumps({"p": p.tolist(), "positive": positive.tolist(), "fold": fold.tolist(),
                                  "in_sample_p": p.tolist()}))
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"in_sample_p": _sharper(np.clip(p, 0.001, 0.999), 1.3).tolist()}))
    out = tmp_path / "lean.json"
    assert calibration.main(["--scores", str(scores), "--shipped_in_sample", str(shipped), "--bound", "0.95",
                             "--out", str(out)]) == 0
    lean = calibration.load_lean(str(out))
    assert lean.transfer == {"fitted_rows": 1000, "shipped_rows": 1000} and lean.bound == 0.95
    shipped.write_text(json.dumps({"p": [0.5]}))
    assert calibration.main(["--scores", str(scores), "--shipped_in_sample", str(shipped),
                             "--out", str(out)]) == 2
    assert "expected 'in_sample_p' in both" in capsys.readouterr().err


def test_selective_accuracy_and_coverage():
    point = calibration.selective([0.9, 0.2, 0.55, 0.45], [1, 1, 0, 0], 0.7)
    assert point == {"threshold": 0.7, "coverage": 0.5, "shown": 2, "accuracy": 0.5}


def _synthetic(n=3000, seed=1):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    positive = (rng.uniform(size=n) < p).astype(int)  # calibrated already
    return p, positive, np.arange(n) % 5


def test_fit_lean_chooses_the_threshold_on_cross_fitted_scores():
    p, positive, fold = _synthetic()
    lean = calibration.fit_lean(p, positive, fold, precision=0.8)
    assert lean.folds == 5 and lean.rows == len(p)
    # For calibrated scores, leans at confidence >= t are right at least t of the time: t near 0.7.
    assert 0.6 < lean.threshold < 0.8
    assert lean.cross_fitted["accuracy"] >= 0.8
    held = calibration.selective(calibration.apply(lean.calibration, p), positive, lean.threshold)
    assert held["accuracy"] >= 0.78 and held["coverage"] > 0.3


@pytest.mark.parametrize("kwargs, match", [
    (dict(p=[0.5, 1.5], positive=[0, 1], fold=[0, 1], precision=0.7), "probabilities"),
    (dict(p=[0.5, 0.5], positive=[0, 2], fold=[0, 1], precision=0.7), "0 or 1"),
    (dict(p=[0.5, 0.5], positive=[0, 1], fold=[0, 0], precision=0.7), "two folds"),
    (dict(p=[0.5, 0.5], positive=[0, 1], fold=[0, 1], precision=0.3), "precision"),
    (dict(p=[0.5], positive=[0, 1], fold=[0], precision=0.7), "equal-length"),
])
def test_fit_lean_refuses_bad_scores(kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        calibration.fit_lean(**kwargs)


def test_cli_writes_a_lean_the_bundler_reads(tmp_path):
    p, positive, fold = _synthetic(1000)
    scores, valid, out = tmp_path / "oof.json", tmp_path / "valid.json", tmp_path / "lean.json"
    scores.write_text(json.dumps({"p": p.tolist(), "positive": positive.tolist(), "fold": fold.tolist()}))
    valid.write_text(json.dumps({"p": p[:300].tolist(), "positive": positive[:300].tolist()}))
    assert calibration.main(["--scores", str(scores), "--validation", str(valid), "--precision", "0.75",
                             "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert [point["chosen"] for point in written["validation_curve"]].count(True) == 1
    lean = calibration.load_lean(str(out))
    assert lean.target_precision == 0.75 and lean.threshold == written["threshold"]
    section = browser_extension.lean_section([3, 4, 5], ["a", "b", "c", "d", "e", "f"], lean)
    assert section["positive_classes"] == ["d", "e", "f"] and section["threshold"] == lean.threshold
    assert section["calibration"]["x"] == lean.calibration.x


def test_cli_refuses_scores_without_folds(tmp_path, capsys):
    scores = tmp_path / "oof.json"
    scores.write_text(json.dumps({"p": [0.1], "positive": [0]}))
    assert calibration.main(["--scores", str(scores), "--out", str(tmp_path / "x.json")]) == 2
    assert "fold" in capsys.readouterr().err


def test_load_lean_names_a_file_that_is_not_one(tmp_path):
    path = tmp_path / "lean.json"
    path.write_text("{}")
    with pytest.raises(CalibrationError, match="not a calibration file"):
        calibration.load_lean(str(path))


def test_positive_outputs_follow_the_config():
    six_way = load_config("configs/liar.yaml", require_data=False)
    assert [six_way.class_names[i] for i in browser_extension.positive_indices(six_way)] == [
        "half-true", "mostly-true", "true"]
    assert browser_extension.positive_indices(load_config("configs/liar-binary.yaml", require_data=False)) == [1]


def test_uncalibrated_lean_is_always_shown():
    section = browser_extension.lean_section([1], ["no", "yes"], None)
    assert section["calibration"] is None and section["threshold"] is None


def test_lean_round_trips_through_json(tmp_path):
    lean = Lean(calibration=Calibration(x=[0.1, 0.9], y=[0.2, 0.8]), threshold=0.6, target_precision=0.7,
                folds=5, rows=10, cross_fitted={"accuracy": 0.7}, bound=0.95)
    path = tmp_path / "lean.json"
    path.write_text(json.dumps(lean.to_dict()))
    assert calibration.load_lean(str(path)) == lean


def test_validation_scored_by_several_fold_models_reports_their_mean_curve(tmp_path):
    lean = Lean(calibration=Calibration(x=[0.0, 1.0], y=[0.0, 1.0]), threshold=0.7, target_precision=0.7,
                folds=2, rows=4)
    positive = [1, 0, 1, 0]
    first, second = [0.9, 0.1, 0.6, 0.4], [0.9, 0.8, 0.6, 0.4]  # at 0.7: 2 of 4 shown, right; 2 shown, 1 right
    points = {p["threshold"]: p for p in calibration.mean_curve(lean, [first, second], positive)}
    assert points[0.7]["coverage"] == 0.5 and points[0.7]["accuracy"] == 0.75 and points[0.7]["chosen"]
    scores, valid, out = tmp_path / "oof.json", tmp_path / "valid.json", tmp_path / "lean.json"
    p, truth, fold = _synthetic(600)
    scores.write_text(json.dumps({"p": p.tolist(), "positive": truth.tolist(), "fold": fold.tolist()}))
    valid.write_text(json.dumps({"p_by_fold": [first, second], "positive": positive}))
    assert calibration.main(["--scores", str(scores), "--validation", str(valid), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["validation_curve"]) >= len(calibration.CURVE_THRESHOLDS)


def test_the_committed_liar_calibration_is_bundled_by_default():
    cfg = load_config("configs/liar.yaml", require_data=False)
    path = browser_extension.default_calibration(cfg)
    assert path and path.endswith("edge/calibrations/liar.json")
    lean = calibration.load_lean(path)
    assert lean.target_precision == 0.7 and 0.5 < lean.threshold < 1.0
    assert np.all(np.diff(lean.calibration.x) > 0) and np.all(np.diff(lean.calibration.y) > 0)
    assert browser_extension.default_calibration(load_config("configs/liar-binary.yaml", require_data=False)) is None
