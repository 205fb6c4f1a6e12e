"""Submits a compiled pipeline spec to a Kubeflow Pipelines endpoint as a run.

The runner writes TFX's PipelineJob JSON (pipeline spec plus runtime config);
``kfp.Client`` 2.x only reads a bare pipeline spec from .yaml/.zip/.tar.gz, so
the spec is handed over as YAML and the pipeline root taken from the JSON's
runtime config.

    python -m kubeflow.submit --spec build/kubeflow/taxi_pipeline.json --host https://KFP_ENDPOINT
    python -m kubeflow.submit --spec build/kubeflow/taxi_pipeline.json --host https://KFP_ENDPOINT \\
        --experiment taxi --run-name taxi-nightly
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Dict, Optional, Sequence

import yaml


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


def run_arguments(args: argparse.Namespace, job: Dict[str, Any], package_path: str) -> Dict[str, Any]:
    """Keyword arguments for ``kfp.Client.create_run_from_pipeline_package``."""
    runtime = job.get("runtimeConfig", {})
    return {
        "pipeline_file": package_path,
        "arguments": dict(runtime.get("parameterValues", {})),
        "run_name": args.run_name,
        "experiment_name": args.experiment or job["pipelineSpec"]["pipelineInfo"]["name"],
        "namespace": args.namespace,
        "pipeline_root": args.pipeline_root or runtime.get("gcsOutputDirectory"),
    }


def submit(args: argparse.Namespace):
    """Creates the run; returns kfp's RunPipelineResult."""
    import kfp  # imported here: argument handling stays usable without a cluster

    job = load_pipeline_job(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = run_arguments(args, job, write_kfp_package(job, tmp))
        client = kfp.Client(host=args.host, namespace=args.namespace or "kubeflow")
        return client.create_run_from_pipeline_package(**kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = submit(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"run {result.run_id} submitted to {args.host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
