"""``python -m monitoring calibrate`` on a small slice of the taxi CSV."""
import json
import os

import pandas as pd
import tensorflow_data_validation as tfdv

from common.paths import REPO_ROOT, taxi_data_dir
from monitoring.cli import main

TAXI = os.path.join(REPO_ROOT, "configs", "taxi.yaml")


def test_calibrate_writes_a_candidate_schema_and_its_sidecar(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    pd.read_csv(os.path.join(taxi_data_dir(), "data.csv")).iloc[:400].to_csv(data / "data.csv",
                                                                             index=False)
    out = tmp_path / "out"
    code = main(["calibrate", "--config", TAXI, "--set", f"data.path={data}", "--span-size", "60",
                 "--budget", "0.99", "--comparators", "skew", "--seed", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    sidecar = json.loads((out / "calibration.json").read_text())
    assert (sidecar["span_size"], sidecar["budget"], sidecar["seed"]) == (60, 0.99, 3)
    assert sidecar["history_rows"] == 400 and len(sidecar["features"]) == 14
    assert sidecar["clip_quantile"] == 10 / 60  # ten rows of a span beyond each clip bound
    assert sidecar["tests_per_comparison"] == {"skew": 28} and sidecar["draws"] == 28
    assert len(sidecar["thresholds"]) == 28
    schema = tfdv.load_schema_text(str(out / "schema.pbtxt"))
    fare = next(f for f in schema.feature if f.name == "fare")
    assert fare.skew_comparator.jensen_shannon_divergence.threshold == next(
        t["threshold"] for t in sidecar["thresholds"] if t["feature"] == "fare"
        and t["measure"] == "jensen_shannon")
    # only skew was calibrated: the curated drift threshold stays as it was
    curated = next(f for f in tfdv.load_schema_text(os.path.join(REPO_ROOT, "schema", "taxi", "schema.pbtxt")).feature
                   if f.name == "fare")
    assert fare.drift_comparator == curated.drift_comparator
    assert "wrote" in capsys.readouterr().out


def test_calibrate_explains_a_budget_it_cannot_honour(tmp_path, capsys):
    code = main(["calibrate", "--config", TAXI, "--span-size", "1000", "--budget", "0.05",
                 "--draws", "100", "--out", str(tmp_path)])
    assert code == 2
    assert "draws 100: a budget of 0.05 over 28 tests per comparison needs at least 559" in \
        capsys.readouterr().err
