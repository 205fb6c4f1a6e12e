"""``kubeflow``: the schedules are 5-field crons; a monitoring CronJob needs a KFP endpoint and
the claim that holds run_dir (its checks and decisions outlive each Job's pod)."""
from __future__ import annotations

from typing import Callable

from common.config import PipelineConfig
from common.k8s_grammar import CRON, DNS_SUBDOMAIN

CRON_EXAMPLE = "a 5-field cron (minute hour day month weekday), e.g. '0 * * * *'; '' = none"


def check(cfg: PipelineConfig, fail: Callable) -> None:
    kubeflow = cfg.kubeflow
    for key in ("schedule", "monitoring_schedule"):
        value = getattr(kubeflow, key)
        if value and not CRON.fullmatch(value):
            fail(f"kubeflow.{key}", CRON_EXAMPLE, value)
    if kubeflow.monitoring_schedule:
        if not kubeflow.host:
            fail("kubeflow.host", "the KFP API endpoint the monitoring CronJob submits runs to "
                 "(kubeflow.monitoring_schedule is set)", kubeflow.host)
        if not DNS_SUBDOMAIN.fullmatch(kubeflow.state_claim):
            fail("kubeflow.state_claim", "the PersistentVolumeClaim that holds run_dir in the cluster "
                 "(kubeflow.monitoring_schedule is set)", kubeflow.state_claim)
