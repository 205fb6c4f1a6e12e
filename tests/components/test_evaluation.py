"""components.evaluation: the Evaluator never compares a model with itself."""


def test_evaluator_drops_a_baseline_that_is_the_candidate():
    from tfx.types import standard_artifacts

    from components.evaluation import without_self_baseline

    def model(artifact_id):
        artifact = standard_artifacts.Model()
        artifact.id = artifact_id
        return artifact

    same = {"model": [model(7)], "baseline_model": [model(7)], "examples": []}
    assert "baseline_model" not in without_self_baseline(same)
    other = {"model": [model(8)], "baseline_model": [model(7)], "examples": []}
    assert without_self_baseline(other) is other
    first_run = {"model": [model(7)], "baseline_model": []}
    assert without_self_baseline(first_run) is first_run


def _taxi(*overrides):
    from common.loader import load_config
    from tests.conftest import TAXI_CONFIG

    return load_config(TAXI_CONFIG, list(overrides))


def _flip_configs(eval_config):
    from components.evaluation import FLIP_RATE_CLASS

    return [m for spec in eval_config.metrics_specs for m in spec.metrics if m.class_name == FLIP_RATE_CLASS]


def test_the_flip_rate_against_the_baseline_is_gated_by_a_change_threshold():
    import json

    import tensorflow_model_analysis as tfma

    from components.evaluation import eval_config

    (flip,) = _flip_configs(eval_config(_taxi("evaluation.max_flip_rate=0.1")))
    assert json.loads(flip.config) == {"threshold": 0.5}
    (threshold,) = flip.per_slice_thresholds
    # a change threshold: TFMA keys the flip rate as a diff, which a value threshold never finds
    assert not threshold.threshold.HasField("value_threshold")
    assert threshold.threshold.change_threshold.absolute.value == 0.1
    assert threshold.threshold.change_threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER
    (reported,) = _flip_configs(eval_config(_taxi()))  # null: reported, not gated
    assert not reported.per_slice_thresholds and not reported.HasField("threshold")


def test_without_a_baseline_the_flip_rate_is_not_computed():
    import tensorflow_model_analysis as tfma
    from tfx.utils import proto_utils

    from components.evaluation import eval_config, without_comparisons

    full = eval_config(_taxi("evaluation.max_flip_rate=0.1"))
    stripped = proto_utils.json_to_proto(without_comparisons(proto_utils.proto_to_json(full)), tfma.EvalConfig())
    assert not _flip_configs(stripped)
    kept = [m.class_name for m in stripped.metrics_specs[0].metrics]
    assert kept == [m.class_name for m in full.metrics_specs[0].metrics if m.class_name != "SymmetricFlipRate"]


def test_a_flip_rate_threshold_needs_a_binary_model():
    import os

    import pytest

    from common.config import ConfigError
    from common.loader import load_config
    from common.paths import REPO_ROOT

    with pytest.raises(ConfigError, match="'evaluation.max_flip_rate': expected null for a multi-class model"):
        load_config(os.path.join(REPO_ROOT, "configs", "liar.yaml"), ["evaluation.max_flip_rate=0.1"],
                    require_data=False)
    with pytest.raises(ConfigError, match="'evaluation.max_flip_rate': expected null or a share"):
        _taxi("evaluation.max_flip_rate=1.5")


def test_the_baseline_is_the_latest_pushed_model_not_the_latest_blessed(tmp_path):
    """Model 2 was blessed by the Evaluator but its run was killed before the push: the
    baseline resolver reads only the Pusher's push blessings, so it resolves model 1."""
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
    from tfx.types import standard_artifacts

    from components.evaluation import build_baseline_model_resolver
    from components.pusher import PushBlessing, mark_push_blessing

    resolver = build_baseline_model_resolver()
    channel_types = {key: ch.type for key, ch in resolver.inputs.items()}
    assert channel_types == {"model": standard_artifacts.Model, "model_blessing": PushBlessing}
    # ML Metadata is queried by type name: the Evaluator's ModelBlessing is another type
    assert PushBlessing.TYPE_NAME != standard_artifacts.ModelBlessing.TYPE_NAME
    models = []
    for model_id in (1, 2, 3):
        model = standard_artifacts.Model()
        model.id, model.uri = model_id, str(tmp_path / str(model_id))
        models.append(model)
    pushed, not_pushed = PushBlessing(), PushBlessing()
    mark_push_blessing(pushed, models[0])
    mark_push_blessing(not_pushed, None)  # model 3's Pusher ran, but its blessings were missing
    resolved = LatestBlessedModelStrategy().resolve_artifacts(
        None, {"model": models, "model_blessing": [pushed, not_pushed]})
    assert [m.id for m in resolved["model"]] == [1]


def test_tfma_checks_the_flip_rate_threshold_on_the_key_it_computes():
    """TFMA's validator looks a threshold up by metric key: the flip rate's change threshold
    must land on the (diff) key SymmetricFlipRate computes for the candidate, or the bound
    would be reported as a missing metric instead of being checked."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.metrics import metric_specs

    from components.evaluation import eval_config

    config = tfma.utils.update_eval_config_with_defaults(
        eval_config(_taxi("evaluation.max_flip_rate=0.1")), has_baseline=True, rubber_stamp=True)
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    computed = {key for computation in metric_specs.to_computations(config.metrics_specs, eval_config=config)
                for key in computation.keys if key.name == "symmetric_flip_rate"}
    (candidate,) = computed
    assert candidate.model_name == "candidate" and candidate.is_diff
    assert candidate in thresholds
