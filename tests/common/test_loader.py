"""Config loading: the shipped config is valid; every bad config names file, key, expectation."""
import os

import pytest
import yaml

from common.config import ConfigError, to_dict
from common.loader import config_from_dict, load_config
from common.paths import taxi_data_dir
from tests.conftest import TAXI_CONFIG


def test_taxi_config_loads_with_typed_values(taxi_config):
    assert taxi_config.name == "taxi"
    assert taxi_config.label.kind == "ratio_threshold" and taxi_config.label.fraction == 0.2
    assert taxi_config.data.splits == {"train": 8, "eval": 2}
    assert taxi_config.num_classes == 2
    assert "tips" not in [f.name for f in taxi_config.features]
    assert os.path.isfile(os.path.join(taxi_config.data_path, "data.csv"))
    assert taxi_config.data_path == taxi_data_dir()


def test_config_is_frozen(taxi_config):
    with pytest.raises(Exception):
        taxi_config.trainer.train_steps = 1


def test_overrides_are_typed():
    cfg = load_config(TAXI_CONFIG, ["trainer.train_steps=200", "tuner.enabled=false",
                                    "evaluation.min_auc=0.7"])
    assert cfg.trainer.train_steps == 200 and cfg.tuner.enabled is False
    assert cfg.evaluation.min_auc == 0.7


def test_round_trip_through_custom_config(taxi_config):
    assert config_from_dict(to_dict(taxi_config)) == taxi_config


def _write(tmp_path, mutate):
    with open(TAXI_CONFIG) as f:
        raw = yaml.safe_load(f)
    mutate(raw)
    raw["schema"] = os.path.join(os.path.dirname(TAXI_CONFIG), "..", raw["schema"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda r: r["trainer"].update(train_steps="many"), "trainer.train_steps", "expected an integer"),
    (lambda r: r["trainer"].update(train_steps=0), "trainer.train_steps", "positive integer"),
    (lambda r: r["trainer"].update(epochs=3), "trainer.epochs", "unknown key"),
    (lambda r: r["trainer"].update(early_stopping_patience=-1), "trainer.early_stopping_patience",
     "0 (off)"),
    (lambda r: r.pop("label"), "label", "required but missing"),
    (lambda r: r["label"].update(kind="regression"), "label.kind", "expected one of"),
    (lambda r: r["features"][0].update(kind="numeric", dtype="string"), "features[0].dtype", "int or float"),
    (lambda r: r["features"].append({"name": "tips", "kind": "numeric", "dtype": "float"}),
     "label.column", "label leakage"),
    (lambda r: r["data"].update(splits={"train": 8}), "data.splits", "'train' and 'eval'"),
    (lambda r: r["data"].update(path="/nonexistent/taxi"), "data.path", "existing directory"),
    (lambda r: r["evaluation"].update(slices=[["no_such_feature"]]), "evaluation.slices[0]", "feature names"),
    (lambda r: r["evaluation"].update(min_margin_over_baselines=-0.01), "evaluation.min_margin_over_baselines",
     "[0, 1)"),
    (lambda r: r["serving"].update(model_name="../evil"), "serving.model_name", "letters, digits"),
    (lambda r: r["serving"].update(request_log_flush_seconds=0), "serving.request_log_flush_seconds",
     "(0, 60]"),
    (lambda r: r.update(schema="schema/none/schema.pbtxt"), "schema", "existing schema.pbtxt"),
    (lambda r: r.update(name="Taxi_Data"), "name", "lower-case letters"),
])
def test_bad_config_names_file_key_and_expectation(tmp_path, mutate, key, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(path) and f"'{key}'" in message and expected in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "absent.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_bad_override_is_rejected():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(TAXI_CONFIG, ["trainer.train_steps"])
    with pytest.raises(ConfigError, match="'trainer.batch_size'.*expected an integer"):
        load_config(TAXI_CONFIG, ["trainer.batch_size=big"])
