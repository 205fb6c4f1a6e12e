"""The loop's two schedules in a cluster, rendered from the config and checked before writing.

* ``recurring-run.yaml``: a KFP recurring run of the compiled pipeline
  (``kubeflow.schedule``), the arguments of ``kfp.Client.create_recurring_run``;
  ``python -m kubeflow.submit --recurring`` creates it. Each run evaluates on
  the newest span on disk (the ``range_config`` parameter left empty) and
  trains on the ``train_spans`` before it.
* ``monitoring-cronjob.yaml``: a Kubernetes CronJob (``kubeflow.monitoring_schedule``)
  in the pipeline's image that runs ``python -m monitoring check`` on the newest
  closed span of served traffic, then ``python -m monitoring decide``; decide's
  exit status 1 (retrain) makes the same pod compile the pipeline and submit a
  run to ``kubeflow.host`` (``python -m kubeflow.runner`` then ``kubeflow.submit``).
  The checks, decisions and request log live in ``run_dir`` on the claim
  ``kubeflow.state_claim``, so each Job sees the ones before it.

The CronJob is checked against the Kubernetes schema like the serving
manifests (``serving.k8s.validate``); it is rendered here, not by
``python -m serving.k8s``, because it runs the pipeline's image and submits to
Kubeflow (``IMAGE_ROOT``), a layer above serving.

    python -m kubeflow.schedule --config configs/taxi-spans.yaml --out build/kubeflow
"""
from __future__ import annotations

import argparse
import os
import posixpath
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence

import yaml

from common.cli_args import add_config_arguments
from common.config import ConfigError, PipelineConfig
from common.k8s_grammar import CRON
from common.loader import load_config
from components.span_window_gen import default_parameters
from kubeflow.runner import image_path
from serving.k8s import render, validate
from serving.k8s.__main__ import dump

RECURRING_RUN_FILE = "recurring-run.yaml"
CRONJOB_FILE = "monitoring-cronjob.yaml"
SPEC_IN_POD = "/tmp/pipeline.json"  # where the CronJob's pod compiles the spec it submits
RETRAIN_EXIT = 1  # python -m monitoring decide: 1 = retrain, 0 = no retraining


def kfp_cron(cron: str) -> str:
    """A 5-field cron as KFP's recurring runs take it: with a seconds field in front."""
    return f"0 {cron}"


def recurring_run(cfg: PipelineConfig) -> Dict[str, Any]:
    """Keyword arguments of ``kfp.Client.create_recurring_run`` (the experiment by name;
    ``kubeflow.submit`` resolves it to an id and adds the pipeline package); ``write`` calls
    it only when ``kubeflow.schedule`` is set."""
    return {
        "experiment_name": cfg.pipeline_name,
        "job_name": f"{cfg.pipeline_name}-recurring",
        "description": f"{cfg.pipeline_name} on the newest span, by kubeflow.schedule {cfg.kubeflow.schedule!r} "
                       "(UTC)",
        "cron_expression": kfp_cron(cfg.kubeflow.schedule),
        "max_concurrency": 1,  # a run still training when the next is due delays it, never doubles it
        "no_catchup": True,  # after a pause, one run on the newest span, not one per missed slot
        "params": default_parameters(cfg),
        "pipeline_root": cfg.kubeflow.pipeline_root,
    }


def cronjob_script(cfg: PipelineConfig, overrides: Sequence[str] = ()) -> str:
    """The shell the CronJob's container runs: check, decide, and on retrain compile and submit.

    ``check`` exits 1 when it raised alerts: that is a result (decide reads it), not a failure."""
    config = ["--config", image_path(cfg.source_file)] + [a for o in overrides for a in ("--set", o)]
    args = " ".join(shlex.quote(a) for a in config)
    submit = ["--spec", SPEC_IN_POD, "--host", cfg.kubeflow.host]
    return "\n".join([
        "set -u",
        f"python -m monitoring check {args}; status=$?",
        '[ "$status" -le 1 ] || exit "$status"',
        f"python -m monitoring decide {args}; status=$?",
        '[ "$status" -eq 0 ] && exit 0',
        f'[ "$status" -eq {RETRAIN_EXIT} ] || exit "$status"',
        f"python -m kubeflow.runner {args} --set {shlex.quote('kubeflow.output_file=' + SPEC_IN_POD)} \\",
        "  && exec python -m kubeflow.submit " + " ".join(shlex.quote(a) for a in submit),
    ])


def monitoring_cronjob(cfg: PipelineConfig, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """The CronJob (module doc); one Job at a time, none retried (the next schedule is the retry).
    ``write`` calls it only when ``kubeflow.monitoring_schedule`` is set."""
    kubeflow, k8s = cfg.kubeflow, cfg.serving.kubernetes
    # Not render.labels: those select the TF Serving pods, and a Service must never route to this one.
    labels = {"app.kubernetes.io/name": "monitoring", "app.kubernetes.io/instance": render.resource_name(cfg),
              "app.kubernetes.io/component": "retraining-trigger",
              "app.kubernetes.io/part-of": cfg.pipeline_name, "app.kubernetes.io/managed-by": "kubeflow.schedule"}
    container = {
        "name": "monitoring",
        "image": kubeflow.image,
        "command": ["/bin/sh", "-c", cronjob_script(cfg, overrides)],
        "volumeMounts": [{"name": "state", "mountPath": image_path(cfg.run_dir)}],
    }
    pod: Dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                           "volumes": [{"name": "state", "persistentVolumeClaim": {
                               "claimName": kubeflow.state_claim}}]}
    if k8s.service_account:
        pod["serviceAccountName"] = k8s.service_account
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": f"{render.resource_name(cfg)}-monitoring", "namespace": k8s.namespace,
                     "labels": labels},
        "spec": {
            "schedule": kubeflow.monitoring_schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": dict(labels)}, "spec": pod}}},
        },
    }


def check_recurring_run(definition: Dict[str, Any]) -> None:
    """The definition binds to ``kfp.Client.create_recurring_run`` and its cron is KFP's 6 fields."""
    import inspect

    import kfp  # imported here: rendering needs no KFP client otherwise

    arguments = {k: v for k, v in definition.items() if k != "experiment_name"}
    try:
        inspect.signature(kfp.Client.create_recurring_run).bind(
            None, experiment_id="<id>", pipeline_package_path="<package>", **arguments)
    except TypeError as e:
        raise ValueError(f"{RECURRING_RUN_FILE}: not arguments of kfp.Client.create_recurring_run: {e}") from None
    cron = definition.get("cron_expression", "")
    fields = cron.split(" ", 1)
    if len(fields) != 2 or fields[0] != "0" or not CRON.fullmatch(fields[1]):
        raise ValueError(f"{RECURRING_RUN_FILE}: cron_expression: expected KFP's 6-field cron "
                         f"('0' seconds, then a 5-field cron), got {cron!r}")


def write(cfg: PipelineConfig, out_dir: str, overrides: Sequence[str] = ()) -> List[str]:
    """Writes what the config schedules (either or both); returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    if cfg.kubeflow.schedule:
        definition = recurring_run(cfg)
        check_recurring_run(definition)
        paths.append(posixpath.join(out_dir, RECURRING_RUN_FILE))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write("# kfp.Client.create_recurring_run arguments: python -m kubeflow.submit --recurring "
                    f"{paths[-1]}\n")
            yaml.safe_dump(definition, f, sort_keys=False)
    if cfg.kubeflow.monitoring_schedule:
        cronjob = monitoring_cronjob(cfg, overrides)
        validate.check(cronjob)
        paths.append(posixpath.join(out_dir, CRONJOB_FILE))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write(dump([cronjob]))
    if not paths:
        raise ConfigError(f"{cfg.source_file}: keys 'kubeflow.schedule', 'kubeflow.monitoring_schedule': "
                          "expected at least one 5-field cron, got neither")
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubeflow.schedule", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m kubeflow.schedule --config configs/taxi-spans.yaml --out build/kubeflow")
    add_config_arguments(parser, tune_flag=False)
    parser.add_argument("--out", default="build/kubeflow", help="output directory (default: build/kubeflow)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, require_data=False)
        paths = write(cfg, args.out, args.overrides)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
