"""The real DAG on a few hundred LIAR rows: TSV ExampleGen, text features, baselines,
error analysis, the HTML report, and a REST prediction from the pushed model.

LIAR is research-only and not in this repository: the rows are read from the shared
copy ($LIAR_DIR or ../shared/datasets/liar) into a temporary directory.
"""
import json
import os
import urllib.request

import pytest

from pipeline.__main__ import main
from pipeline.config import REPO_ROOT
from pipeline.local_runner import local_paths
from pipeline.results import collect
from serving.model_server import launch

pytestmark = pytest.mark.e2e

LIAR_CONFIG = os.path.join(REPO_ROOT, "configs", "liar.yaml")
SHARED = os.environ.get("LIAR_DIR") or os.path.join(REPO_ROOT, "..", "shared", "datasets", "liar")
TRAIN_ROWS, EVAL_ROWS = 400, 150


def _sample(directory):
    if not all(os.path.isfile(os.path.join(SHARED, f)) for f in ("train.tsv", "valid.tsv")):
        pytest.skip(f"LIAR data not found at {SHARED} (set LIAR_DIR to the directory holding "
                    "train.tsv and valid.tsv)")
    os.makedirs(directory, exist_ok=True)
    for name, rows in (("train.tsv", TRAIN_ROWS), ("valid.tsv", EVAL_ROWS)):
        with open(os.path.join(SHARED, name), encoding="utf-8") as src, \
                open(os.path.join(directory, name), "w", encoding="utf-8") as dst:
            dst.writelines(line for _, line in zip(range(rows), src))
    return directory


def _overrides(root, data_dir):
    return [f"data.path={data_dir}", "data.path_env=''", f"run_dir={root}/runs",
            f"serving.push_dir={root}/serving", "trainer.train_steps=60", "trainer.eval_steps=3",
            "tuner.max_trials=1", "tuner.trial_steps=10", "evaluation.min_accuracy=0.0",
            "serving.canary_requests=3",
            # the 2-core test machine runs several DAGs at once: the latency gate is for real hosts
            "serving.latency_budget_ms=10000"]


@pytest.fixture(scope="module")
def liar_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("liar"))
    data_dir = _sample(os.path.join(root, "data"))
    args = ["run", "--config", LIAR_CONFIG]
    for override in _overrides(root, data_dir):
        args += ["--set", override]
    code = main(args)
    from pipeline.config import load_config
    return load_config(LIAR_CONFIG, _overrides(root, data_dir)), code


def test_liar_dag_runs_with_baselines_and_error_analysis(liar_run):
    cfg, code = liar_run
    assert code == 0
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert {"TsvExampleGen", "Transform", "Trainer", "Evaluator", "TextBaselines",
            "ErrorAnalysis", "Pusher"} <= set(result.artifacts)
    figures = result.analysis["splits"]["eval"]
    assert set(figures) == {"all_features", "only_statement"}
    assert figures["all_features"]["examples"] == EVAL_ROWS
    assert len(figures["all_features"]["confusion_matrix"]) == 6
    for key in ("accuracy", "macro_f1", "binary_accuracy"):
        assert 0.0 <= figures["all_features"][key] <= 1.0
    baselines = result.text_baselines["eval"]
    assert set(baselines) == {"majority_class", "tfidf_logistic_regression"}
    assert "sparse_categorical_accuracy" in result.metrics
    report = os.path.join(local_paths(cfg).root, "report.html")
    text = open(report, encoding="utf-8").read()
    # two confusion matrices (all features, statement only) and one chart per slice feature
    assert text.count("data:image/png;base64") >= 6
    for heading in ("Per-slice sparse_categorical_accuracy", "<h3>party</h3>", "<h3>subjects</h3>",
                    "<h3>speaker_record_seen_xf</h3>"):
        assert heading in text


def test_pushed_liar_model_scores_a_statement_without_metadata(liar_run):
    cfg, _ = liar_run
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.pushed, result.blessing_failures
    version = os.path.basename(result.pushed_to)
    blank = {"statement": "", "subjects": "", "speaker": "", "job": "", "state": "", "party": "",
             "context": ""}
    instances = [dict(blank, statement="Says the unemployment rate doubled in one year."),
                 dict(blank, statement="The state budget grew by 3 percent.", party="democrat",
                      speaker="barack-obama", subjects="economy,jobs")]
    with launch(result.pushed_to, cfg.serving.model_name, version) as server:
        request = urllib.request.Request(server.model_url(cfg.serving.model_name) + ":predict",
                                         data=json.dumps({"instances": instances}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.load(response)["predictions"]
    assert len(predictions) == 2
    for p in predictions:
        assert len(p) == 6 and abs(sum(p) - 1.0) < 1e-4
