"""The LIAR configs: variants by 'extends', the leaky features kept out of the honest
model, TSV data options, and errors that name the file, key and expectation."""
import os

import pytest
import yaml

from common import executor_config
from common.config import ConfigError, to_dict
from common.loader import config_from_dict, load_config
from common.paths import REPO_ROOT
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides

COUNTS = {"barely_true_count", "false_count", "half_true_count", "mostly_true_count", "pants_fire_count"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar_data")))


def test_honest_config_never_uses_the_credit_history(data_dir):
    cfg = load_config(LIAR_CONFIG, fixture_overrides(data_dir))
    names = {f.name for f in cfg.features}
    assert not names & COUNTS
    assert cfg.num_classes == 6 and cfg.label.positive_classes == ("half-true", "mostly-true", "true")
    assert config_from_dict(to_dict(cfg)) == cfg


def test_variants_extend_the_base_config(data_dir):
    binary = load_config(os.path.join(REPO_ROOT, "configs", "liar-binary.yaml"), fixture_overrides(data_dir))
    assert binary.name == "liar-binary" and binary.num_classes == 2
    assert binary.label.classes == load_config(LIAR_CONFIG, fixture_overrides(data_dir)).label.classes
    leaky = load_config(os.path.join(REPO_ROOT, "configs", "liar-leaky.yaml"), fixture_overrides(data_dir))
    assert COUNTS <= {f.name for f in leaky.features} and leaky.serving.model_name == "liar_leaky"
    # the audit flag is an ordinary override too
    assert COUNTS <= {f.name for f in load_config(LIAR_CONFIG, fixture_overrides(data_dir) + ["leaky=true"]).features}


def test_data_directory_from_environment(data_dir, monkeypatch):
    monkeypatch.setenv("LIAR_DIR", data_dir)
    assert load_config(LIAR_CONFIG, ["data.path=/nonexistent"]).data_path == data_dir


def test_serving_hosts_load_the_config_without_the_dataset(monkeypatch):
    """The gateway and the manifests need the schema and serving keys, not the training data."""
    monkeypatch.delenv("LIAR_DIR", raising=False)
    missing = ["data.path=/nonexistent", "data.path_env=''"]
    with pytest.raises(ConfigError, match="data.path.*existing directory of TSV files"):
        load_config(LIAR_CONFIG, missing)
    cfg = load_config(LIAR_CONFIG, missing, require_data=False)
    assert cfg.serving.model_name == "liar" and cfg.data_path == "/nonexistent"


def _write(tmp_path, data_dir, mutate, name="bad.yaml"):
    with open(LIAR_CONFIG) as f:
        raw = yaml.safe_load(f)
    raw["schema"] = os.path.join(REPO_ROOT, raw["schema"])
    raw["data"].update(path=data_dir, path_env="")
    mutate(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _feature(raw, name):
    return next(f for f in raw["features"] if f["name"] == name)


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda r: r["data"].update(files={"train": "train.tsv"}), "data.files", "train and eval"),
    (lambda r: r["data"]["files"].update(eval="absent.tsv"), "data.files.eval", "a file in"),
    (lambda r: r["data"].update(columns=[]), "data.columns", "names and dtypes"),
    (lambda r: r["data"]["columns"].append({"name": "id", "dtype": "string"}), "data.columns", "unique"),
    (lambda r: r["data"]["columns"][2].update(dtype="int"), "features[0].dtype", "dtype of column 'statement'"),
    (lambda r: r["data"].update(format="parquet"), "data.format", "expected one of"),
    (lambda r: _feature(r, "statement").update(ngrams=[0]), "features[0].ngrams", "n-gram sizes"),
    (lambda r: _feature(r, "statement").update(dtype="int"), "features[0].dtype", "string for a text"),
    (lambda r: _feature(r, "speaker_record").update(fold_key="id"), "features[3].fold_key", "string feature"),
    (lambda r: _feature(r, "speaker_record").update(folds=1), "features[3].folds", "at least 2"),
    (lambda r: r["features"].append({"name": "label", "kind": "categorical", "dtype": "string"}),
     "label.column", "label leakage"),
    (lambda r: r["features"].append({"name": "nope", "kind": "categorical", "dtype": "string"}),
     "features[14].name", "a column from data.columns"),
    (lambda r: r["claim_neighbours"].update(column="statement"), "claim_neighbours.column", "a new column name"),
    (lambda r: r["claim_neighbours"].update(text="false_count"), "claim_neighbours.text", "a string column"),
    (lambda r: r["claim_neighbours"].update(k=0), "claim_neighbours.k", "a positive integer"),
    (lambda r: r["claim_neighbours"].update(folds=1), "claim_neighbours.folds", "at least 2 folds"),
    (lambda r: r["claim_neighbours"].update(temperature=0), "claim_neighbours.temperature", "positive"),
    (lambda r: _feature(r, "claim_neighbours").update(name="record", source="subjects"),
     "claim_neighbours.column", "the column of a feature"),
    (lambda r: r["trainer"].update(feature_dropout_keep=["text"]), "trainer.feature_dropout_keep", "feature names"),
    (lambda r: r["trainer"].update(feature_dropout_share=1.0), "trainer.feature_dropout_share", "[0, 1)"),
    (lambda r: r["trainer"].update(fold_loss_weight=-1), "trainer.fold_loss_weight", ">= 0"),
    (lambda r: r["trainer"].update(weight_averaging=0.99, train_steps=60), "trainer.weight_averaging",
     "momentum^train_steps <= 0.01"),
    (lambda r: r["trainer"].update(token_dropout=1.0), "trainer.token_dropout", "[0, 1)"),
    (lambda r: r["trainer"].update(wide_bag_pooling="max"), "trainer.wide_bag_pooling",
     "one of ['mean', 'sqrtn']"),
    (lambda r: (r["trainer"].update(fold_loss_weight=1.0), r["label"].update(fold_to_binary=True)),
     "trainer.fold_loss_weight", "several classes"),
    (lambda r: r["evaluation"].update(text_baseline_feature="party"), "evaluation.text_baseline_feature",
     "text feature"),
    (lambda r: r["evaluation"].update(slices=[["speaker_seen"]]), "evaluation.slices[0]", "slice keys"),
    (lambda r: r["label"].update(positive_classes=["truthy"]), "label.positive_classes", "names from"),
])
def test_bad_liar_config_names_file_key_and_expectation(tmp_path, data_dir, mutate, key, expected):
    path = _write(tmp_path, data_dir, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(path) and f"'{key}'" in message and expected in message


def test_extends_cycle_and_missing_parent_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="'extends': a cycle"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("extends: none.yaml\n")
    with pytest.raises(ConfigError, match=r"none.yaml: config file not found \(extended by"):
        load_config(str(tmp_path / "c.yaml"))


def test_transform_slice_ignores_training_and_evaluation_settings(data_dir):
    base = load_config(LIAR_CONFIG, fixture_overrides(data_dir))
    tweaked = load_config(LIAR_CONFIG, fixture_overrides(data_dir) + [
        "trainer.learning_rate=0.01", "evaluation.min_accuracy=0.5", "tuner.max_trials=5"])
    assert executor_config.transform(base) == executor_config.transform(tweaked)
    assert executor_config.trainer(base) != executor_config.trainer(tweaked)
    changed = load_config(LIAR_CONFIG, fixture_overrides(data_dir) + ["leaky=true"])
    assert executor_config.transform(changed) != executor_config.transform(base)
    for cfg in (base, changed):  # the audit's leaky features survive the slice
        assert executor_config.config_from_slice(executor_config.transform(cfg), "test").features == cfg.features


def test_class_names_follow_the_trained_label(data_dir):
    """Six names for the six-way model (its binary fold is only reported), two when trained folded."""
    six_way = load_config(LIAR_CONFIG, fixture_overrides(data_dir))
    assert six_way.class_names == liar_fixture.CLASSES and six_way.num_classes == 6
    binary = load_config(os.path.join(REPO_ROOT, "configs", "liar-binary.yaml"), fixture_overrides(data_dir))
    assert binary.class_names == ["not truthful", "truthful"] and binary.num_classes == 2
