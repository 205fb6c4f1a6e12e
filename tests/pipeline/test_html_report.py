"""The HTML run report from figures shaped as the run's artifacts give them.

The e2e LIAR run reads the same sections back from a real TFMA evaluation;
here the rows are written by hand so each section's rules can be checked fast.
"""
import re

import numpy as np
import pytest

from common.loader import load_config
from components import classification_metrics as cm
from pipeline import html_report
from pipeline.results import RunResult
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides

NAMES = liar_fixture.CLASSES


@pytest.fixture(scope="module")
def liar_cfg(tmp_path_factory):
    data = liar_fixture.write_fixture(str(tmp_path_factory.mktemp("report_data")))
    return load_config(LIAR_CONFIG, fixture_overrides(data))


def _images(text: str) -> int:
    return text.count("data:image/png;base64,")


def test_per_slice_section_shows_the_most_common_values_with_their_accuracy(liar_cfg):
    rows = [("", "", "", "sparse_categorical_accuracy", 0.31)]
    for k in range(15):  # more values than the report shows
        rows += [("state", f"state-{k}", "", "example_count", float(k + 1)),
                 ("state", f"state-{k}", "", "sparse_categorical_accuracy", k / 20)]
    rows.append(("party", "<script>", "", "example_count", 3.0))
    rows.append(("party", "<script>", "", "sparse_categorical_accuracy", 0.5))
    section = html_report.per_slice_section(liar_cfg, rows)
    assert "overall 0.310" in section
    assert "<h3>state</h3>" in section and "<h3>party</h3>" in section
    assert _images(section) == 2
    assert "<script>" not in section  # values are drawn into the pictures, never into the markup


def test_fairness_section_names_each_class_vs_rest(liar_cfg):
    rows = [("party", p, "", "example_count", n) for p, n in (("democrat", 40.0), ("republican", 60.0))]
    for class_id in (0, 3):
        for party in ("democrat", "republican"):
            rows += [("party", party, f"classId:{class_id} topK:1", "fpr", 0.2),
                     ("party", party, f"classId:{class_id} topK:1", "fnr", 0.4)]
    section = html_report.fairness_section(liar_cfg, rows, NAMES)
    assert "Fairness by party" in section
    assert _images(section) == 2
    # the charts' titles are inside the PNGs; the class names come from the label config
    assert html_report._class_title("classId:3 topK:1", NAMES) == "class half-true vs rest (top-1)"
    assert html_report._class_title("", ["no", "yes"]) == "positive = yes"
    assert (html_report._class_title("", NAMES, ["half-true", "mostly-true", "true"])
            == "positive = half-true, mostly-true, true")


def test_write_report_is_one_self_contained_file(liar_cfg, tmp_path):
    matrix = [[3 if i == j else 1 for j in range(6)] for i in range(6)]
    figures = {"accuracy": 0.3, "macro_f1": 0.28, "binary_accuracy": 0.64, "examples": 48,
               "confusion_matrix": matrix}
    result = RunResult(analysis={"class_names": NAMES,
                                 "splits": {"eval": {"all_features": figures, "only_statement": figures}}},
                       text_baselines={"eval": {"majority_class": {"accuracy": 0.2, "examples": 48}}})
    path = html_report.write_report(liar_cfg, result, str(tmp_path / "report.html"), "summary <b>")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!doctype html>") and text.endswith("</html>")
    assert _images(text) == 2  # one confusion matrix per scored variant, no calibration figures given
    assert "expected calibration error" not in text
    assert "summary &lt;b&gt;" in text
    assert re.search(r"<td>baseline: majority class</td><td>0\.2000</td><td>–</td>", text)
    assert "<td>0.6400</td>" in text and "src='http" not in text


def test_report_draws_the_calibration_of_each_variant_that_has_one(liar_cfg, tmp_path):
    matrix = [[3 if i == j else 1 for j in range(6)] for i in range(6)]
    p = np.linspace(0.01, 0.99, 200)
    calibrated = cm.calibration(p, (np.arange(200) % 100 < p * 100).astype(int))
    figures = {"accuracy": 0.3, "macro_f1": 0.28, "binary_accuracy": 0.64, "examples": 200,
               "confusion_matrix": matrix}
    result = RunResult(analysis={"class_names": NAMES, "splits": {"eval": {
        "all_features": dict(figures, calibration=calibrated), "only_statement": figures}}})
    text = open(html_report.write_report(liar_cfg, result, str(tmp_path / "r.html"), ""), encoding="utf-8").read()
    assert _images(text) == 3  # two confusion matrices, one reliability diagram
    ece = f"{calibrated['expected_calibration_error']:.4f}"
    assert re.search(rf"<td>model \(all features\)</td>(<td>[^<]*</td>){{3}}<td>{ece}</td>", text)
    assert re.search(r"<td>model \(only statement\)</td>(<td>[^<]*</td>){3}<td>–</td>", text)
