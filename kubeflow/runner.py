"""Kubeflow runner: compiles the one DAG (``create_pipeline``) into a KFP v2 pipeline spec.

Like ``pipeline.local_runner`` it only chooses paths and Beam args; there is no
metadata connection because KFP provides ML Metadata in the cluster. The
executors run in the image built from ``kubeflow/Dockerfile``, which holds the
project at ``IMAGE_ROOT``, so host paths in the config (schema, data, push
directory) are rewritten to where that image has them; URIs (gs://...) are
kept as they are.

    python -m kubeflow.runner --config configs/taxi.yaml
    python -m kubeflow.runner --config configs/taxi.yaml --set beam.runner=dataflow --no-tune

With ``data.spans`` (configs/taxi-spans.yaml) the spec has one runtime parameter,
``range_config``: the span the run evaluates on, the ``train_spans`` before it
being the training window (``python -m kubeflow.submit --span N``; empty: the
newest span on disk).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
import sys
from typing import List, Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions
from tfx import v1 as tfx

from common.cli_args import add_config_arguments
from common.config import ConfigError, PipelineConfig
from common.loader import load_config
from common.paths import REPO_ROOT, TAXI_DEFAULT, resolve_path
from components.data import file_sha256
from components.span_window_gen import default_parameters, range_parameter
from pipeline.pipeline import create_pipeline

# Where kubeflow/Dockerfile puts the project (WORKDIR, on PYTHONPATH) and the taxi CSV.
IMAGE_ROOT = "/pipeline"
IMAGE_TAXI_DATA = posixpath.join(IMAGE_ROOT, "data", "chicago_taxi")

BEAM_RUNNERS = {"direct": "DirectRunner", "dataflow": "DataflowRunner",
                "flink": "FlinkRunner", "spark": "SparkRunner"}
# One pod, every core: 0 workers means one per CPU (fn_api_runner). Override
# with beam.extra_args.direct in the config.
DIRECT_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=multi_processing",
                    "--direct_num_workers=0")


# Beam flags by which TFX knows the workers' Python environment is provided
# (tfx.utils.dependency_utils.make_beam_dependency_flags checks these options).
ENVIRONMENT_FLAGS = ("extra_packages", "setup_file", "requirements_file",
                     "sdk_container_image", "worker_harness_container_image")


def kubeflow_beam_args(cfg: PipelineConfig) -> List[str]:
    """Beam args for the executors: ``beam.extra_args[beam.runner]`` (DirectRunner has defaults),
    naming the pipeline image as the workers' environment (``with_image_environment``)."""
    return with_image_environment(_runner_args(cfg), cfg.kubeflow.image)


def with_image_environment(args: List[str], image: str) -> List[str]:
    """``args`` plus ``--sdk_container_image=<image>`` unless they already say where the
    workers' Python environment comes from.

    Every Beam worker of this pipeline runs the pipeline image: DirectRunner's worker
    processes in the executor pod, Dataflow's workers (``--sdk_container_image``) and the
    Flink/Spark SDK worker pool beside each task manager. Given none of ENVIRONMENT_FLAGS,
    each TFX Beam executor copies TFX's install into an sdist and stages it
    (``--extra_package``): 1.5 s in every Beam pod, and an SDK worker pool's boot would then
    pip install it, with TFX's own version ranges, over the locked environment. Beam uses the
    image only for Docker environments; an EXTERNAL worker pool and DirectRunner ignore it."""
    options = PipelineOptions(list(args)).get_all_options()
    if any(options.get(flag) for flag in ENVIRONMENT_FLAGS):
        return list(args)
    return list(args) + [f"--sdk_container_image={image}"]


def _runner_args(cfg: PipelineConfig) -> List[str]:
    runner = cfg.beam.runner
    args = list(cfg.beam.extra_args.get(runner, ()))
    if not args:
        if runner == "direct":
            return list(DIRECT_BEAM_ARGS)
        raise ConfigError(
            f"{cfg.source_file}: key 'beam.extra_args.{runner}': expected the Beam arguments for "
            f"beam.runner={runner} (e.g. ['--runner={BEAM_RUNNERS[runner]}', ...]), got none; "
            f"configured runners: {sorted(cfg.beam.extra_args) or 'none'}")
    flags = [a.split("=", 1)[1] for a in args if a.startswith("--runner=")]
    if not flags:
        return [f"--runner={BEAM_RUNNERS[runner]}"] + args
    if any(f != BEAM_RUNNERS[runner] for f in flags):
        raise ConfigError(
            f"{cfg.source_file}: key 'beam.extra_args.{runner}': expected --runner={BEAM_RUNNERS[runner]} "
            f"for beam.runner={runner}, got {['--runner=' + f for f in flags]}")
    return args


def image_path(path: str) -> str:
    """A config path as the executor pods see it: inside the repo -> under IMAGE_ROOT."""
    if "://" in path:
        return path
    host = resolve_path(path)
    relative = os.path.relpath(host, REPO_ROOT)
    if relative == ".." or relative.startswith(".." + os.sep):
        return host  # outside the project: expected at the same path in the pod (a mounted volume)
    return posixpath.join(IMAGE_ROOT, *relative.split(os.sep))


def image_config(cfg: PipelineConfig) -> PipelineConfig:
    """The config with host paths rewritten for the image (also what custom_config carries)."""
    data_path = IMAGE_TAXI_DATA if cfg.data.path == TAXI_DEFAULT else image_path(cfg.data.path)
    return dataclasses.replace(
        cfg,
        schema=image_path(cfg.schema),
        data=dataclasses.replace(cfg.data, path=data_path),
        serving=dataclasses.replace(cfg.serving, push_dir=image_path(cfg.serving.push_dir)),
        run_dir=image_path(cfg.run_dir),
        source_file=image_path(cfg.source_file) if cfg.source_file else cfg.source_file)


def output_path(cfg: PipelineConfig) -> str:
    """``kubeflow.output_file``, relative paths resolved against the repo root."""
    return resolve_path(cfg.kubeflow.output_file)


def build_kubeflow_pipeline(cfg: PipelineConfig, tune: Optional[bool] = None) -> tfx.dsl.Pipeline:
    """With ``data.spans``, the eval span is the runtime parameter ``range_config``
    (components.span_window_gen: KubeflowV2DagRunner cannot compile the local runner's
    SpanRangeStrategy resolver, so the window is read from the files)."""
    span_range = range_parameter() if cfg.data.spans.pattern else None
    return create_pipeline(image_config(cfg), pipeline_root=cfg.kubeflow.pipeline_root,
                           beam_pipeline_args=kubeflow_beam_args(cfg), tune=tune,
                           schema_sha256=file_sha256(cfg.schema_path), span_range=span_range)


def compile_pipeline(cfg: PipelineConfig, tune: Optional[bool] = None) -> str:
    """Writes the pipeline spec JSON to ``kubeflow.output_file``; returns its path."""
    path = output_path(cfg)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=cfg.kubeflow.image),
        output_dir=os.path.dirname(path), output_filename=os.path.basename(path))
    runner.run(build_kubeflow_pipeline(cfg, tune), parameter_values=default_parameters(cfg))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubeflow.runner", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m kubeflow.runner --config configs/taxi.yaml\n"
               "  python -m kubeflow.runner --config configs/taxi.yaml --set beam.runner=dataflow\n"
               "  python -m kubeflow.runner --config configs/taxi.yaml "
               "--set kubeflow.image=REGISTRY/IMAGE:TAG --no-tune")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        path = compile_pipeline(cfg, tune=args.tune)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
