"""Kubeflow: the one DAG compiles to a KFP v2 spec with the right tasks, edges, image and args.

Expectations come from the pipeline object itself (component ids, input
channels) so a new component or edge is checked without editing this file;
a few key ones are also named outright.
"""
import json
import os
import re
import sys

import pytest
import tfx
from tfx.v1.dsl import Resolver

from common.config import ConfigError
from common.loader import load_config
from common.paths import REPO_ROOT
from kubeflow import runner, submit
from tests.conftest import TAXI_CONFIG

INFRA_VALIDATOR_EXECUTOR = "tfx.components.infra_validator.executor.Executor"
DOCKERFILE = os.path.join(REPO_ROOT, "kubeflow", "Dockerfile")


def _compile(tmp_path, *overrides, tune=None):
    """Compiles into tmp_path; returns (cfg, pipeline object, PipelineJob dict)."""
    cfg = load_config(TAXI_CONFIG, [f"kubeflow.output_file={tmp_path}/p.json",
                                    f"kubeflow.pipeline_root={tmp_path}/root", *overrides])
    path = runner.compile_pipeline(cfg, tune=tune)
    assert path == os.path.join(str(tmp_path), "p.json")
    with open(path) as f:
        job = json.load(f)
    return cfg, runner.build_kubeflow_pipeline(cfg, tune), job


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return _compile(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """Dataflow, Kubernetes infra validation: the branches a cluster uses."""
    return _compile(tmp_path_factory.mktemp("variant"), "beam.runner=dataflow",
                    "serving.infra_validation=kubernetes")


def _tasks(job):
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def _executors(job):
    return job["pipelineSpec"]["deploymentSpec"]["executors"]


def _task_ids(job, node_id):
    """Tasks compiled from one node (a Resolver may become several '<id>-...' tasks)."""
    return {t for t in _tasks(job) if t == node_id or t.startswith(node_id + "-")}


def _producer(job, task, key):
    return _tasks(job)[task]["inputs"]["artifacts"][key]["taskOutputArtifact"]["producerTask"]


def _containers(job):
    return {name: e["container"] for name, e in _executors(job).items() if "container" in e}


def _infra_validator_id(pipeline):
    """LocalInfraValidator or TFX's InfraValidator, whichever the config chose."""
    (node_id,) = [c.id for c in pipeline.components if c.id.endswith("InfraValidator")]
    return node_id


def test_every_component_is_a_task(default):
    cfg, pipeline, job = default
    ids = [c.id for c in pipeline.components]
    assert len(ids) == 15
    for node_id in ids:
        assert _task_ids(job, node_id), f"{node_id} missing from {sorted(_tasks(job))}"
    assert set(_tasks(job)) == set().union(*(_task_ids(job, i) for i in ids))
    assert {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "AnomaliesGate",
            "Transform", "Tuner", "Trainer", "TrivialBaselines", "latest_blessed_model_resolver",
            "latest_accepted_statistics_resolver", "Evaluator", _infra_validator_id(pipeline), "Pusher",
            "ErrorAnalysis"} == set(ids)
    assert cfg.serving.infra_validation == "local"
    args = _executors(job)[_infra_validator_id(pipeline) + "_executor"]["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == "components.local_infra_validator.Executor"


def test_every_input_channel_is_wired_to_its_producer(default):
    _, pipeline, job = default
    checked = 0
    for component in pipeline.components:
        if component.id not in _tasks(job) or isinstance(component, Resolver):
            continue  # resolvers query ML Metadata, no producer task: checked by name below
        for key, channel in component.inputs.items():
            producer = _producer(job, component.id, key)
            assert producer in _task_ids(job, channel.producer_component_id), (component.id, key)
            assert producer in _tasks(job)[component.id]["dependentTasks"]
            checked += 1
    assert checked >= 20


def test_key_dependencies(default):
    _, pipeline, job = default
    infra_validator = _infra_validator_id(pipeline)
    deps = {t: set(spec.get("dependentTasks", [])) for t, spec in _tasks(job).items()}
    assert _producer(job, "AnomaliesGate", "anomalies") == "ExampleValidator"
    assert _producer(job, "AnomaliesGate", "previous_statistics") == "latest_accepted_statistics_resolver"
    # Transform runs after the gate by an explicit edge (a data edge would defeat its cache)
    assert _producer(job, "Transform", "schema") == "ImportSchemaGen"
    assert {"AnomaliesGate", "CsvExampleGen", "ImportSchemaGen"} <= deps["Transform"]
    assert {"Transform", "Tuner"} <= deps["Trainer"]
    assert _producer(job, "Trainer", "hyperparameters") == "Tuner"
    assert {"Trainer", "latest_blessed_model_resolver-model-resolver"} <= deps["Evaluator"]
    assert _producer(job, "Evaluator", "baselines") == "TrivialBaselines"  # the baseline gate's input
    assert {"Evaluator", infra_validator, "Trainer"} <= deps["Pusher"]
    assert _producer(job, "Pusher", "model_blessing") == "Evaluator"
    assert _producer(job, "Pusher", "infra_blessing") == infra_validator


def test_every_executor_runs_the_project_image(default):
    cfg, _, job = default
    containers = _containers(job)
    assert len(containers) == 13  # every node except the resolvers
    for name, container in containers.items():
        assert container["image"] == cfg.kubeflow.image, name
    assert cfg.kubeflow.image == "ghcr.io/example/tfx-pipeline:1.16.0"
    gate = containers["AnomaliesGate_executor"]["args"]
    assert gate[gate.index("--executor_class_path") + 1] == "components.anomalies_gate.AnomaliesGate_Executor"
    evaluator = containers["Evaluator_executor"]["args"]
    assert evaluator[evaluator.index("--executor_class_path") + 1] == "components.evaluation.GatedEvaluatorExecutor"


def test_direct_runner_uses_every_core_of_the_pod(default):
    _, _, job = default
    for name, container in _containers(job).items():
        for arg in [*runner.DIRECT_BEAM_ARGS, "--sdk_container_image=ghcr.io/example/tfx-pipeline:1.16.0"]:
            assert arg in container["args"], name


def test_dataflow_args_reach_every_executor(variant):
    cfg, _, job = variant
    assert cfg.beam.runner == "dataflow"
    for name, container in _containers(job).items():
        assert "--runner=DataflowRunner" in container["args"], name
        assert "--project=example-project" in container["args"], name
        assert "--runner=DirectRunner" not in container["args"], name


def test_kubernetes_infra_validation_runs_tfx_own_executor(variant):
    _, pipeline, job = variant
    assert _infra_validator_id(pipeline) == "InfraValidator"
    assert "LocalInfraValidator" not in _tasks(job)
    args = _executors(job)["InfraValidator_executor"]["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == INFRA_VALIDATOR_EXECUTOR
    serving_spec = json.loads(_tasks(job)["InfraValidator"]["inputs"]["parameters"]["serving_spec"]
                              ["runtimeValue"]["constantValue"]["stringValue"])
    assert "kubernetes" in serving_spec and serving_spec["tensorflow_serving"]["image_name"]
    assert _producer(job, "Pusher", "infra_blessing") == "InfraValidator"
    assert _producer(job, "InfraValidator", "model") == "Trainer"


def test_compile_writes_nothing_to_the_pipeline_root(default, tmp_path):
    cfg, _, job = default
    assert job["runtimeConfig"]["gcsOutputDirectory"] == cfg.kubeflow.pipeline_root
    assert not os.path.exists(cfg.kubeflow.pipeline_root)  # no wheel, no _wheels/
    text = json.dumps(job)
    assert ".whl" not in text and "_wheels" not in text and "module_file" not in text
    assert "trainer.preprocessing.preprocessing_fn" in text and "components.trainer_run.run_fn" in text


def test_no_host_path_is_compiled_in(default):
    _, _, job = default
    text = json.dumps(job)
    assert REPO_ROOT not in text and sys.prefix not in text
    params = _tasks(job)["ImportSchemaGen"]["inputs"]["parameters"]
    schema_file = params["schema_file"]["runtimeValue"]["constantValue"]["stringValue"]
    assert schema_file == f"{runner.IMAGE_ROOT}/schema/taxi/schema.pbtxt"
    assert os.path.isfile(os.path.join(REPO_ROOT, os.path.relpath(schema_file, runner.IMAGE_ROOT)))
    assert runner.IMAGE_TAXI_DATA in text


def test_image_path_maps_only_project_paths():
    assert runner.image_path("schema/taxi/schema.pbtxt") == "/pipeline/schema/taxi/schema.pbtxt"
    assert runner.image_path(os.path.join(REPO_ROOT, "runs", "x")) == "/pipeline/runs/x"
    assert runner.image_path("gs://bucket/models") == "gs://bucket/models"
    assert runner.image_path("/mnt/models") == "/mnt/models"


def test_cli_no_tune_resolves_the_last_hyperparameters(tmp_path, capsys):
    out = tmp_path / "cli" / "spec.json"
    code = runner.main(["--config", TAXI_CONFIG, "--set", f"kubeflow.output_file={out}",
                        "--set", f"kubeflow.pipeline_root={tmp_path}/root", "--no-tune"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out)
    job = json.loads(out.read_text())
    assert "Tuner" not in _tasks(job)
    assert _task_ids(job, "latest_hyperparameters_resolver")
    assert _producer(job, "Trainer", "hyperparameters") in _task_ids(job, "latest_hyperparameters_resolver")


def test_beam_args_need_the_runner_configured():
    cfg = load_config(TAXI_CONFIG, ["beam.runner=flink", "beam.extra_args={}"])
    with pytest.raises(ConfigError, match=r"beam\.extra_args\.flink.*--runner=FlinkRunner"):
        runner.kubeflow_beam_args(cfg)
    cfg = load_config(TAXI_CONFIG, ["beam.runner=spark", "beam.extra_args={spark: [--runner=FlinkRunner]}"])
    with pytest.raises(ConfigError, match="expected --runner=SparkRunner"):
        runner.kubeflow_beam_args(cfg)
    cfg = load_config(TAXI_CONFIG, ["beam.runner=spark", "beam.extra_args={spark: [--spark_master_url=x]}"])
    assert runner.kubeflow_beam_args(cfg) == ["--runner=SparkRunner", "--spark_master_url=x",
                                              f"--sdk_container_image={cfg.kubeflow.image}"]


@pytest.mark.parametrize("given", [["--setup_file=./setup.py"], ["--extra_package=/p/x.tar.gz"],
                                   ["--requirements_file=r.txt"], ["--sdk_container_image=other:1"],
                                   ["--worker_harness_container_image=other:1"]])
def test_an_environment_the_args_already_name_is_kept(given):
    args = ["--runner=FlinkRunner", *given]
    assert runner.with_image_environment(args, "img:1") == args
    assert runner.with_image_environment(["--runner=FlinkRunner"], "img:1") == [
        "--runner=FlinkRunner", "--sdk_container_image=img:1"]


# -- the image ---------------------------------------------------------------

def _dockerfile_instructions():
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_builds_on_the_installed_tfx():
    assert _dockerfile_instructions()[0] == f"FROM tensorflow/tfx:{tfx.__version__}"


def test_dockerfile_installs_the_project_where_the_runner_expects_it():
    lines = _dockerfile_instructions()
    assert f"WORKDIR {runner.IMAGE_ROOT}" in lines
    runs = " ".join(line for line in lines if line.startswith("RUN "))
    assert re.search(r"pip install [^&]*--no-deps -r requirements\.txt", runs)
    assert re.search(r"pip install [^&]*--no-deps -e \.( |$)", runs)
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "TF_USE_LEGACY_KERAS=1" in env and f"PYTHONPATH={runner.IMAGE_ROOT}" in env
    copied = {line.split()[1] for line in lines if line.startswith("COPY ")}
    with open(os.path.join(REPO_ROOT, "pyproject.toml")) as f:
        packages = re.findall(r'"(\w+)\*"', re.search(r"include = \[(.*)\]", f.read()).group(1))
    assert set(packages) | {"configs", "schema", "requirements.txt"} <= copied
    assert f"data/{os.path.basename(runner.IMAGE_TAXI_DATA)}" in runs


def test_dockerignore_keeps_local_state_out_of_the_image():
    with open(os.path.join(REPO_ROOT, ".dockerignore")) as f:
        entries = set(f.read().split())
    assert {".venv", "runs", "build", ".git"} <= entries
    assert "__pycache__" in " ".join(entries)


# -- submit --------------------------------------------------------------------

def test_submit_arguments_from_the_compiled_job(default, tmp_path):
    cfg, _, _ = default
    args = submit.parse_args(["--spec", runner.output_path(cfg), "--host", "https://kfp.example",
                              "--run-name", "nightly"])
    job = submit.load_pipeline_job(args.spec)
    package = submit.write_kfp_package(job, str(tmp_path))
    kwargs = submit.run_arguments(args, job, package)
    assert kwargs == {"pipeline_file": package, "arguments": {}, "run_name": "nightly",
                      "experiment_name": job["pipelineSpec"]["pipelineInfo"]["name"],
                      "namespace": None, "pipeline_root": cfg.kubeflow.pipeline_root}
    # The package is what kfp.Client 2.x itself reads back as a PipelineSpec.
    from kfp.client import client as kfp_client
    spec = kfp_client._extract_pipeline_yaml(package).pipeline_spec
    assert set(spec.root.dag.tasks) == set(_tasks(job))
    args = submit.parse_args(["--spec", args.spec, "--host", "h", "--experiment", "e",
                              "--pipeline-root", "gs://b/r", "--namespace", "team"])
    kwargs = submit.run_arguments(args, job, package)
    assert (kwargs["experiment_name"], kwargs["pipeline_root"], kwargs["namespace"]) == ("e", "gs://b/r", "team")


def test_submit_calls_kfp_client(default, monkeypatch):
    cfg, _, _ = default
    calls = {}

    class FakeClient:
        def __init__(self, host, namespace):
            calls["host"] = host

        def create_run_from_pipeline_package(self, **kwargs):
            calls["kwargs"] = kwargs
            calls["package_existed"] = os.path.isfile(kwargs["pipeline_file"])

            class Result:
                run_id = "run-1"
            return Result()

    import kfp
    monkeypatch.setattr(kfp, "Client", FakeClient)
    assert submit.main(["--spec", runner.output_path(cfg), "--host", "https://kfp.example"]) == 0
    assert calls["host"] == "https://kfp.example" and calls["package_existed"]
    assert calls["kwargs"]["pipeline_root"] == cfg.kubeflow.pipeline_root
    with pytest.raises(SystemExit):
        submit.parse_args(["--spec", "x.json"])  # --host is required
    assert submit.main(["--spec", "/nonexistent.json", "--host", "h"]) == 2


def test_liar_config_compiles_with_the_tsv_example_gen(tmp_path):
    """The second dataset by config alone: custom ExampleGen executor and analyses compile too."""
    from testing import liar_fixture

    data = liar_fixture.write_fixture(str(tmp_path / "data"))
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "liar.yaml"), [
        f"data.path={data}", "data.path_env=''", f"kubeflow.output_file={tmp_path}/liar.json",
        f"kubeflow.pipeline_root={tmp_path}/root"])
    with open(runner.compile_pipeline(cfg)) as f:
        job = json.load(f)
    tasks = _tasks(job)
    assert {"TsvExampleGen", "TextBaselines", "ErrorAnalysis", "Transform", "Trainer"} <= set(tasks)
    # chosen outside the pipeline (tuner.reuse_last: false): no search, no earlier run's values
    assert not {"Tuner", "latest_hyperparameters_resolver"} & set(tasks)
    assert "hyperparameters" not in tasks["Trainer"]["inputs"].get("artifacts", {})
    args = _executors(job)["TsvExampleGen_executor"]["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == "components.tsv_example_gen.TsvExecutor"


# -- spans: the eval span as a runtime parameter ---------------------------------

@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    """configs/taxi-spans.yaml over three tiny spans, compiled without the tuner."""
    root = tmp_path_factory.mktemp("spans")
    for span in (1, 2, 3):
        os.makedirs(root / "data" / f"span-{span}")
        (root / "data" / f"span-{span}" / "data.csv").write_text("fare\n1.0\n")
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml"), [
        f"data.path={root / 'data'}", f"kubeflow.output_file={root}/spans.json",
        f"kubeflow.pipeline_root={root}/root"])
    with open(runner.compile_pipeline(cfg, tune=False)) as f:
        return cfg, json.load(f)


def test_spans_compile_with_the_eval_span_as_a_runtime_parameter(spans):
    from components.span_window_gen import RANGE_PARAMETER

    _, job = spans
    root = job["pipelineSpec"]["root"]
    assert root["inputDefinitions"]["parameters"] == {RANGE_PARAMETER: {"type": "STRING"}}
    assert job["runtimeConfig"]["parameters"] == {RANGE_PARAMETER: {"stringValue": ""}}  # newest span
    example_gen = _tasks(job)["CsvExampleGen"]
    assert example_gen["inputs"]["parameters"][RANGE_PARAMETER] == {"componentInputParameter": RANGE_PARAMETER}
    container = _executors(job)["CsvExampleGen_executor"]["container"]
    assert container["args"][container["args"].index("--executor_class_path") + 1] == \
        "components.span_window_gen.SpanWindowExecutor"
    # TFX's driver resolves the span and fingerprints its files before KFP's cache check
    assert container["lifecycle"]["preCacheCheck"]["command"][-1] == \
        "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
    # no ML Metadata span window: the window is the one ExampleGen's train split
    assert not {"TimeSplit", "span_window_resolver"} & set(_tasks(job))
    assert _producer(job, "StatisticsGen", "examples") == "CsvExampleGen"
    assert _producer(job, "Evaluator", "examples") == "CsvExampleGen"


def test_submit_span_sets_the_range_config(spans, tmp_path):
    from tfx.proto import range_config_pb2
    from tfx.utils import proto_utils

    from components.span_window_gen import RANGE_PARAMETER

    cfg, _ = spans
    args = submit.parse_args(["--spec", runner.output_path(cfg), "--host", "h", "--span", "7"])
    job = submit.load_pipeline_job(args.spec)
    arguments = submit.run_arguments(args, job, "p.yaml")["arguments"]
    range_config = proto_utils.json_to_proto(arguments[RANGE_PARAMETER], range_config_pb2.RangeConfig())
    assert (range_config.static_range.start_span_number, range_config.static_range.end_span_number) == (7, 7)
    args = submit.parse_args(["--spec", runner.output_path(cfg), "--host", "h"])
    assert submit.run_arguments(args, job, "p.yaml")["arguments"] == {RANGE_PARAMETER: ""}


def test_submit_span_needs_a_spans_spec(default):
    cfg, _, _ = default
    assert submit.main(["--spec", runner.output_path(cfg), "--host", "h", "--span", "3"]) == 2
