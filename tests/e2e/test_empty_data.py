"""An empty CSV (its header only) stops at the data gate, saying so, before Transform."""
import csv
import os

import pytest

from common.paths import taxi_data_dir
from pipeline.results import latest_run_outputs
from pipeline.run_paths import local_paths
from tests.e2e.conftest import config_for
from tests.e2e.test_taxi_pipeline import _cli

pytestmark = pytest.mark.e2e


def test_header_only_csv_stops_at_the_gate(tmp_path, capsys):
    root, data_dir = str(tmp_path), str(tmp_path / "empty")
    os.makedirs(data_dir)
    with open(os.path.join(taxi_data_dir(), "data.csv"), newline="") as f:
        header = next(csv.reader(f))
    with open(os.path.join(data_dir, "data.csv"), "w", newline="") as f:
        csv.writer(f).writerow(header)
    assert _cli(root, data_dir, "tuner.enabled=false") == 1
    err = capsys.readouterr().err
    assert "2 anomalies against the curated schema; drift not checked: no accepted data yet" in err
    for split in ("eval", "train"):
        assert f"split '{split}': empty: 0 examples (an empty file, a CSV with only its header" in err
    cfg = config_for(root, data_dir)
    nodes = set(latest_run_outputs(local_paths(cfg).metadata, cfg.pipeline_name))
    assert "StatisticsGen" in nodes and "Transform" not in nodes and "Trainer" not in nodes
