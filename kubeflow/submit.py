"""Submits a compiled pipeline spec to a Kubeflow Pipelines endpoint as a run.

The runner writes TFX's PipelineJob JSON (pipeline spec plus runtime config);
``kfp.Client`` 2.x only reads a bare pipeline spec from .yaml/.zip/.tar.gz, so
the spec is handed over as YAML and the pipeline root taken from the JSON's
runtime config.

    python -m kubeflow.submit --spec build/kubeflow/taxi_pipeline.json --host https://KFP_ENDPOINT
    python -m kubeflow.submit --spec build/kubeflow/taxi_pipeline.json --host https://KFP_ENDPOINT \\
        --experiment taxi --run-name taxi-nightly
    python -m kubeflow.submit --spec build/kubeflow/taxi_spans_pipeline.json --host https://KFP_ENDPOINT --span 13
    python -m kubeflow.submit --spec build/kubeflow/taxi_spans_pipeline.json --host https://KFP_ENDPOINT \\
        --recurring build/kubeflow/recurring-run.yaml
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Dict, Optional, Sequence

import yaml

from components.span_window_gen import RANGE_PARAMETER, span_range_json


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kubeflow.submit", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[-1].splitlines()))
    parser.add_argument("--spec", required=True,
                        help="the compiled spec (python -m kubeflow.runner prints its path)")
    parser.add_argument("--host", required=True, help="the KFP API endpoint, e.g. https://HOST/pipeline")
    parser.add_argument("--experiment", default=None,
                        help="experiment to file the run under (default: the pipeline name)")
    parser.add_argument("--run-name", default=None, help="run name (default: KFP's name + timestamp)")
    parser.add_argument("--namespace", default=None, help="Kubernetes namespace (multi-user KFP only)")
    parser.add_argument("--pipeline-root", default=None,
                        help="override the pipeline root compiled into the spec")
    parser.add_argument("--span", type=int, default=None,
                        help="a spans pipeline: evaluate on this span, train on the train_spans before it "
                             "(default: the newest span on disk)")
    parser.add_argument("--recurring", default=None, metavar="FILE",
                        help="create the recurring run FILE defines (python -m kubeflow.schedule) "
                             "instead of one run")
    return parser.parse_args(argv)


def load_pipeline_job(spec_path: str) -> Dict[str, Any]:
    """The runner's JSON as a PipelineJob dict ({pipelineSpec, runtimeConfig, ...})."""
    if not os.path.isfile(spec_path):
        raise FileNotFoundError(f"{spec_path}: no compiled spec; run `python -m kubeflow.runner` first")
    with open(spec_path, encoding="utf-8") as f:
        job = json.load(f)
    if "pipelineSpec" not in job:
        raise ValueError(f"{spec_path}: expected the PipelineJob JSON written by kubeflow.runner "
                         f"(a 'pipelineSpec' key), got keys {sorted(job)}")
    return job


def write_kfp_package(job: Dict[str, Any], directory: str) -> str:
    """The job's pipeline spec as the YAML package kfp.Client reads; returns its path."""
    path = os.path.join(directory, "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    return path


def spec_defaults(job: Dict[str, Any]) -> Dict[str, Any]:
    """The spec's parameter defaults. TFX writes them in the runtime config's ``parameters``
    (typed values) or, with pipeline spec 2.1, ``parameterValues`` (plain ones)."""
    runtime = job.get("runtimeConfig", {})
    values = dict(runtime.get("parameterValues", {}))
    for name, typed in runtime.get("parameters", {}).items():
        values[name] = next(iter(typed.values()))
    return values


def with_span(args: argparse.Namespace, values: Dict[str, Any]) -> Dict[str, Any]:
    """``values`` with ``--span`` (when given) as ExampleGen's range_config."""
    if args.span is None:
        return values
    if RANGE_PARAMETER not in values:
        raise ValueError(f"{args.spec}: --span: expected a spec compiled from a config with data.spans "
                         f"(a '{RANGE_PARAMETER}' parameter), got parameters {sorted(values)}")
    return {**values, RANGE_PARAMETER: span_range_json(args.span)}


def parameter_values(args: argparse.Namespace, job: Dict[str, Any]) -> Dict[str, Any]:
    """The run's parameters: the spec's defaults, and ``--span`` as ExampleGen's range_config."""
    return with_span(args, spec_defaults(job))


def run_arguments(args: argparse.Namespace, job: Dict[str, Any], package_path: str) -> Dict[str, Any]:
    """Keyword arguments for ``kfp.Client.create_run_from_pipeline_package``."""
    runtime = job.get("runtimeConfig", {})
    return {
        "pipeline_file": package_path,
        "arguments": parameter_values(args, job),
        "run_name": args.run_name,
        "experiment_name": args.experiment or job["pipelineSpec"]["pipelineInfo"]["name"],
        "namespace": args.namespace,
        "pipeline_root": args.pipeline_root or runtime.get("gcsOutputDirectory"),
    }


def recurring_arguments(args: argparse.Namespace, job: Dict[str, Any]) -> Dict[str, Any]:
    """The ``--recurring`` file's ``create_recurring_run`` arguments (experiment by name)."""
    with open(args.recurring, encoding="utf-8") as f:
        definition = yaml.safe_load(f)
    if not isinstance(definition, dict) or "cron_expression" not in definition:
        raise ValueError(f"{args.recurring}: expected the recurring-run definition python -m kubeflow.schedule "
                         "writes (a 'cron_expression' key)")
    # the spec's defaults, then the file's values, then --span: the command line has the last word
    definition["params"] = with_span(args, {**spec_defaults(job), **(definition.get("params") or {})})
    if args.pipeline_root:
        definition["pipeline_root"] = args.pipeline_root
    return definition


def submit(args: argparse.Namespace):
    """Creates the run (or the recurring run); returns kfp's result."""
    import kfp  # imported here: argument handling stays usable without a cluster

    job = load_pipeline_job(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        package = write_kfp_package(job, tmp)
        # arguments first: a wrong one fails before any call to the endpoint
        kwargs = recurring_arguments(args, job) if args.recurring else run_arguments(args, job, package)
        client = kfp.Client(host=args.host, namespace=args.namespace or "kubeflow")
        if args.recurring:
            experiment_name = kwargs.pop("experiment_name", None)
            experiment = client.create_experiment(args.experiment or experiment_name, namespace=args.namespace)
            return client.create_recurring_run(experiment_id=experiment.experiment_id,
                                               pipeline_package_path=package, **kwargs)
        return client.create_run_from_pipeline_package(**kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = submit(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.recurring:
        print(f"recurring run {result.recurring_run_id} created on {args.host}")
    else:
        print(f"run {result.run_id} submitted to {args.host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
