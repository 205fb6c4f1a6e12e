"""``serving``: gateway limits, batching, ports, the request log, and names Kubernetes accepts."""
from __future__ import annotations

import re
from typing import Callable

from common.config import KubernetesConfig, PipelineConfig
from common.k8s_grammar import DNS_LABEL, DNS_SUBDOMAIN, GCS_URI, PVC_URI, RESOURCE_NAME, parse_quantity


def check(cfg: PipelineConfig, fail: Callable) -> None:
    serving = cfg.serving
    batching = serving.batching
    if batching.max_batch_size < 1 or batching.num_batch_threads < 1 or batching.max_enqueued_batches < 1:
        fail("serving.batching", "max_batch_size, num_batch_threads and max_enqueued_batches >= 1",
             (batching.max_batch_size, batching.num_batch_threads, batching.max_enqueued_batches))
    if batching.batch_timeout_micros < 0:
        fail("serving.batching.batch_timeout_micros", "a non-negative integer", batching.batch_timeout_micros)
    if serving.max_request_bytes < 1024 or serving.max_batch_rows < 1:
        fail("serving.max_request_bytes/max_batch_rows", "at least 1024 bytes and 1 row",
             (serving.max_request_bytes, serving.max_batch_rows))
    if serving.request_log_window_seconds < 1:
        fail("serving.request_log_window_seconds", "a positive number of seconds",
             serving.request_log_window_seconds)
    if serving.feedback_window_spans < 1 or serving.feedback_max_request_ids < 1:
        fail("serving.feedback_window_spans/feedback_max_request_ids", "positive integers",
             (serving.feedback_window_spans, serving.feedback_max_request_ids))
    if not 0 < serving.request_log_flush_seconds <= 60:
        fail("serving.request_log_flush_seconds", "a number of seconds in (0, 60] (default 1)",
             serving.request_log_flush_seconds)
    known = {f.name for f in cfg.features}
    for name in serving.sensitive_features:
        if name not in known:
            fail(f"serving.sensitive_features.{name}", f"one of the features {sorted(known)}", name)
    for key, port in (("serving.rest_port", serving.rest_port), ("serving.grpc_port", serving.grpc_port)):
        if not 1 <= port <= 65535:
            fail(key, "a TCP port 1..65535", port)
    if not serving.model_name.replace("_", "").replace("-", "").isalnum():
        fail("serving.model_name", "letters, digits, '-' and '_' only", serving.model_name)
    check_kubernetes(serving.kubernetes, fail)


def check_kubernetes(k8s: KubernetesConfig, fail: Callable) -> None:
    """serving.kubernetes: names the API server accepts, positive sizes, sane resources."""
    prefix = "serving.kubernetes"
    if not DNS_LABEL.fullmatch(k8s.namespace):
        fail(f"{prefix}.namespace", "a DNS-1123 label (lower-case letters, digits, '-', max 63)", k8s.namespace)
    for key in ("service_account", "credentials_secret"):
        value = getattr(k8s, key)
        if value and not DNS_SUBDOMAIN.fullmatch(value):
            fail(f"{prefix}.{key}", "empty or a DNS-1123 subdomain (lower-case letters, digits, '-', '.')", value)
    if not re.fullmatch(r"[-._A-Za-z0-9]+", k8s.credentials_key):
        fail(f"{prefix}.credentials_key", "a Secret key (letters, digits, '-', '_', '.')", k8s.credentials_key)
    if k8s.replicas < 1:
        fail(f"{prefix}.replicas", "a positive integer", k8s.replicas)
    if k8s.max_replicas < k8s.replicas:
        fail(f"{prefix}.max_replicas", f"at least serving.kubernetes.replicas ({k8s.replicas})", k8s.max_replicas)
    if k8s.model_config_poll_seconds < 1:
        fail(f"{prefix}.model_config_poll_seconds", "a positive number of seconds", k8s.model_config_poll_seconds)
    uri = k8s.storage_uri
    if uri and not (GCS_URI.fullmatch(uri) or PVC_URI.fullmatch(uri)):
        fail(f"{prefix}.storage_uri", "empty, gs://<bucket>/<path> or pvc://<claim>/<path>", uri)
    for section, quantities in k8s.resources.items():
        if section not in ("requests", "limits"):
            fail(f"{prefix}.resources.{section}", "'requests' or 'limits'", section)
        for name, quantity in quantities.items():
            key = f"{prefix}.resources.{section}.{name}"
            if not RESOURCE_NAME.fullmatch(name):
                fail(key, "a resource name such as cpu, memory or nvidia.com/gpu", name)
            if parse_quantity(quantity) is None:
                fail(key, "a Kubernetes quantity such as '500m', '2' or '4Gi'", quantity)
    requests, limits = k8s.resources.get("requests", {}), k8s.resources.get("limits", {})
    for name in sorted(set(requests) & set(limits)):
        if parse_quantity(requests[name]) > parse_quantity(limits[name]):
            fail(f"{prefix}.resources.requests.{name}",
                 f"at most the limit {limits[name]!r} (Kubernetes rejects requests above limits)", requests[name])
