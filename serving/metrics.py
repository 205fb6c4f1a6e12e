"""Request metrics in the Prometheus text exposition format (version 0.0.4).

Written by hand (a counter and a histogram are a few lines) so the gateway
needs no client library. Series are labelled by model, version, verb and
HTTP code, the labels a canary dashboard compares stable and canary by.
"""
import bisect
import threading
from typing import Dict, List, Mapping, Sequence, Tuple

# Seconds: sub-millisecond model calls up to slow batched calls.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PREFIX = "gateway"

LabelKey = Tuple[Tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(key: LabelKey, extra: Sequence[Tuple[str, str]] = ()) -> str:
    pairs = list(key) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """Thread-safe counters and latency histograms, rendered on demand."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self._buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._requests: Dict[LabelKey, int] = {}
        self._errors: Dict[LabelKey, int] = {}
        self._hist: Dict[LabelKey, List[float]] = {}  # bucket counts..., +Inf count, sum
        self._verdicts: Dict[LabelKey, int] = {}

    def observe(self, model: str, version: str, verb: str, code: int, seconds: float) -> None:
        """Records one answered request (errors are the 4xx/5xx ones)."""
        key = (("model", model), ("version", version), ("verb", verb), ("code", str(code)))
        hkey = (("model", model), ("version", version), ("verb", verb))
        index = bisect.bisect_left(self._buckets, seconds)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            if code >= 400:
                self._errors[key] = self._errors.get(key, 0) + 1
            hist = self._hist.get(hkey)
            if hist is None:
                hist = self._hist[hkey] = [0.0] * (len(self._buckets) + 2)
            hist[index] += 1
            hist[-1] += seconds

    def count_verdicts(self, model: str, answers: Mapping[str, int]) -> None:
        """Statement verdicts stored (``serving.feedback.verdicts``), by answer: the share
        of "wrong" is the readers' view of the offline model's accuracy."""
        with self._lock:
            for answer, count in answers.items():
                key = (("model", model), ("answer", answer))
                self._verdicts[key] = self._verdicts.get(key, 0) + count

    def render(self) -> str:
        """The /metrics body."""
        lines: List[str] = []
        with self._lock:
            for name, help_text, series in (
                    ("requests_total", "Requests answered, by model, version, verb and HTTP code.",
                     self._requests),
                    ("request_errors_total", "Requests answered with a 4xx or 5xx code.", self._errors),
                    ("feedback_verdicts_total", "Statement verdicts (reader right/wrong on an "
                     "offline lean) stored, by model and answer.", self._verdicts)):
                lines.append(f"# HELP {PREFIX}_{name} {help_text}")
                lines.append(f"# TYPE {PREFIX}_{name} counter")
                for key, value in sorted(series.items()):
                    lines.append(f"{PREFIX}_{name}{_labels(key)} {value}")
            metric = f"{PREFIX}_request_latency_seconds"
            lines.append(f"# HELP {metric} Time from the request's arrival to its answer.")
            lines.append(f"# TYPE {metric} histogram")
            for key, hist in sorted(self._hist.items()):
                cumulative = 0.0
                for bound, count in zip(self._buckets + (float("inf"),), hist[:-1]):
                    cumulative += count
                    lines.append(f"{metric}_bucket{_labels(key, [('le', _number(bound))])} "
                                 f"{_number(cumulative)}")
                lines.append(f"{metric}_sum{_labels(key)} {repr(hist[-1])}")
                lines.append(f"{metric}_count{_labels(key)} {_number(cumulative)}")
        return "\n".join(lines) + "\n"


# The request log's ``stats()`` keys rendered as Prometheus series: (key, metric, type, help).
_LOG_SERIES = (
    ("queued_rows", "request_log_queued_rows", "gauge", "Rows answered and not yet written."),
    ("waiting_requests", "request_log_waiting_requests", "gauge",
     "Requests held back right now because the log's writer is behind (back-pressure)."),
    ("waited_requests", "request_log_waited_requests_total", "counter",
     "Requests that were held back by the log's back-pressure."),
    ("wait_seconds", "request_log_wait_seconds_total", "counter",
     "Seconds requests spent held back by the log's back-pressure."),
    ("syncs", "request_log_syncs_total", "counter", "fsync rounds of the log's files."),
    ("writer_in_process", "request_log_writer_in_process", "gauge",
     "1 when rows are encoded in the gateway's own process: by choice, or because the "
     "log's writer process died (an alert when a writer process was asked for)."),
)


def render_log_stats(stats: Mapping[str, float]) -> str:
    """The request log's counters as Prometheus series.

    ``rows_total{outcome="dropped"}`` only grows when the writer made no room
    for ``max_wait_seconds`` (a stalled disk) and ``failed`` for unencodable
    rows or write errors: both are alerts. Back-pressure (the log holding
    requests back instead of dropping rows) shows in the wait series.
    """
    lines = [f"# HELP {PREFIX}_request_log_rows_total Rows given to the request log, by outcome.",
             f"# TYPE {PREFIX}_request_log_rows_total counter"]
    for key in ("logged_rows", "written_rows", "dropped_rows", "failed_rows", "late_rows"):
        if key in stats:
            lines.append(f'{PREFIX}_request_log_rows_total{{outcome="{key[:-5]}"}} {_number(stats[key])}')
    for key, name, kind, help_text in _LOG_SERIES:
        if key in stats:
            lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}",
                      f"{PREFIX}_{name} {_number(stats[key])}"]
    return "\n".join(lines) + "\n"
