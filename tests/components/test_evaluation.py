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
