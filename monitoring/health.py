"""Software health from the gateway's ``/metrics``: error rate and p99 latency per model version.

The gateway exposes (``serving.metrics``, Prometheus text format 0.0.4)
``gateway_requests_total{model,version,verb,code}`` and the histogram
``gateway_request_latency_seconds{model,version,verb}``. Both are counters
since the gateway started, so one scrape gives the figures over its lifetime
(Prometheus itself, with the rules ``serving.k8s`` renders, gives them over a
sliding window).

Only inference requests count (the verbs ``predict``, ``classify``,
``regress``): status, metadata and feedback calls are not the model's service.

* error rate: the share of requests answered 5xx. A 4xx is the client's
  mistake (a malformed or out-of-domain request), counted and shown but not
  a failure of the service; a drifting client shows up in the data checks.
* p99 latency: the 0.99 quantile of the latency histogram summed over the
  version's verbs, interpolated linearly inside its bucket as Prometheus'
  ``histogram_quantile`` does (an answer in the ``+Inf`` bucket is reported
  as the largest finite bound: a lower bound of the truth).

The text is parsed here (a few lines of the exposition grammar) rather than
with a client library: the project has none among its direct dependencies.
"""
from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from common.serving_contract import INFERENCE_VERBS

REQUESTS = "gateway_requests_total"
LATENCY_BUCKET = "gateway_request_latency_seconds_bucket"
QUANTILE = 0.99

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)"
                     r"(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Sample = Tuple[str, Dict[str, str], float]


def parse_samples(text: str, source: str = "metrics") -> Iterator[Sample]:
    """(name, labels, value) of every sample line; comments and blank lines skipped."""
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"{source}: line {number}: not a Prometheus sample: {line[:120]!r}")
        labels: Dict[str, str] = {}
        rest = match["labels"] or ""
        position = 0
        while position < len(rest):
            pair = _LABEL.match(rest, position)
            if pair is None:
                raise ValueError(f"{source}: line {number}: bad labels {rest!r}")
            labels[pair["key"]] = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group(0)], pair["value"])
            position = pair.end()
        try:
            value = float(match["value"].replace("+Inf", "inf").replace("-Inf", "-inf"))
        except ValueError:
            raise ValueError(f"{source}: line {number}: value {match['value']!r} is not a number") from None
        yield match["name"], labels, value


@dataclass(frozen=True)
class VersionHealth:
    """One model version's request counts and latency since the gateway started."""
    version: Optional[int]
    requests: int
    server_errors: int     # 5xx answers
    client_errors: int     # 4xx answers
    p99_latency_ms: Optional[float]  # None: no latency observed

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0

    def to_json(self) -> Dict[str, object]:
        return {"version": self.version, "requests": self.requests,
                "server_errors": self.server_errors, "client_errors": self.client_errors,
                "error_rate": self.error_rate, "p99_latency_ms": self.p99_latency_ms}


def histogram_quantile(quantile: float, buckets: Mapping[float, float]) -> Optional[float]:
    """Prometheus' ``histogram_quantile`` over cumulative ``{upper bound: count}`` buckets."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = quantile * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


def version_health(text: str, model: str, source: str = "metrics") -> Dict[Optional[int], VersionHealth]:
    """Per version of ``model``, its requests, errors and p99 latency (from ``text``).

    Version None gathers the requests the gateway could not attribute to a served
    version (its metrics leave the label empty for made-up versions).
    """
    requests: Dict[Optional[int], List[int]] = {}   # version -> [all, 5xx, 4xx]
    buckets: Dict[Optional[int], Dict[float, float]] = {}
    for name, labels, value in parse_samples(text, source):
        if labels.get("model") != model or name not in (REQUESTS, LATENCY_BUCKET) \
                or labels.get("verb") not in INFERENCE_VERBS:
            continue
        raw = labels.get("version", "")
        try:
            version: Optional[int] = int(raw) if raw else None  # None: no served version named
        except ValueError:
            raise ValueError(f"{source}: {name}: version label {raw!r} is not a number") from None
        if name == REQUESTS:
            counts = requests.setdefault(version, [0, 0, 0])
            code = labels.get("code", "")
            counts[0] += int(value)
            counts[1] += int(value) if code.startswith("5") else 0
            counts[2] += int(value) if code.startswith("4") else 0
        else:
            bound = float(labels["le"].replace("+Inf", "inf"))
            per_version = buckets.setdefault(version, {})
            per_version[bound] = per_version.get(bound, 0.0) + value
    health = {}
    for version in sorted(set(requests) | set(buckets), key=lambda v: (v is None, v or 0)):
        total, server, client = requests.get(version, [0, 0, 0])
        seconds = histogram_quantile(QUANTILE, buckets.get(version, {}))
        health[version] = VersionHealth(version, total, server, client,
                                        None if seconds is None else seconds * 1000.0)
    return health


def fetch_metrics(url: str, timeout: float = 10.0) -> str:
    """The ``/metrics`` text of a gateway at ``url`` (its base URL or the metrics URL itself)."""
    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:  # noqa: S310 (operator's URL)
            return answer.read().decode("utf-8")
    except OSError as err:
        raise OSError(f"--gateway-url: cannot read {target}: {err}") from err
