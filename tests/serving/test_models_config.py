"""serving.models_config: the models.config file the gateway and TF Serving share."""
import pytest

from serving import models_config
from serving.models_config import ModelEntry, ModelsConfigError


def test_render_parse_round_trip_keeps_versions_and_labels(tmp_path):
    entry = ModelEntry("taxi", "/models/taxi", versions=(1, 2), labels={"stable": 1, "canary": 2})
    path = tmp_path / "models.config"
    models_config.write(str(path), [entry])
    text = path.read_text()
    assert 'name: "taxi"' in text and "specific" in text
    assert models_config.read(str(path)) == {"taxi": entry}


def test_with_label_adds_the_version_to_the_served_set_and_removes_labels():
    entry = ModelEntry("taxi", "/m", versions=(1,), labels={"stable": 1})
    moved = entry.with_label("canary", 3)
    assert moved.versions == (1, 3) and moved.labels == {"stable": 1, "canary": 3}
    assert moved.with_label("canary", None).labels == {"stable": 1}


def test_served_versions_follow_the_policy():
    assert ModelEntry("m", "/m").served_versions([3, 1, 2]) == (3,)
    assert ModelEntry("m", "/m", versions=(1, 3)).served_versions([1, 2, 3]) == (1, 3)
    assert ModelEntry("m", "/m").served_versions([]) == ()


def test_label_outside_served_versions_is_rejected_naming_model_and_label():
    with pytest.raises(ModelsConfigError, match=r"model 'taxi'.*label 'stable'.*version 5"):
        models_config.render([ModelEntry("taxi", "/m", versions=(1,), labels={"stable": 5})])


def test_unreadable_text_names_the_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ModelsConfigError, match=str(path)):
        models_config.read(str(path))
    with pytest.raises(ModelsConfigError, match="cannot read"):
        models_config.read(str(tmp_path / "missing.config"))


def test_duplicate_model_and_bad_name_are_rejected():
    text = models_config.render([ModelEntry("a", "/a")]) * 1
    twice = text.replace("model_config_list {", "model_config_list {\n" + text.split("{", 1)[1].rsplit("}", 1)[0], 1)
    with pytest.raises(ModelsConfigError, match="listed twice"):
        models_config.parse(twice, "f")
    with pytest.raises(ModelsConfigError, match="name"):
        models_config.render([ModelEntry("../etc", "/a")])


def test_batching_and_monitoring_files_come_from_the_config(taxi_config):
    batching = models_config.render_batching(taxi_config.serving.batching)
    assert f"max_batch_size {{ value: {taxi_config.serving.batching.max_batch_size} }}" in batching
    assert "prometheus_config" in models_config.render_monitoring()
