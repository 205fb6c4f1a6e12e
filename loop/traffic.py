"""Users: a quarter's rows sent to the gateway as REST predictions, their labels posted back.

Each request carries a few rows and its own ``X-Request-Id`` (the canary routes by
it, and feedback names it); right after its answer, the request's true outcomes go
back through ``POST /v1/models/<m>/feedback`` as the raw label column. The accuracy
users got is counted here, from the answers themselves; which version answered each
row is the request log's to say (``monitoring.served``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence

from common.config import PipelineConfig
from monitoring.labelled import true_class
from monitoring.predictions import predicted_class
from serving import request_log
from serving.client import Client


class TrafficError(RuntimeError):
    """The gateway refused users' traffic or feedback: names the request and the answer."""


@dataclass
class SpanTraffic:
    """What users sent in one replayed quarter and what they got back."""
    quarter: int
    log_span: int
    rows: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else float("nan")


def _outputs(prediction: Any) -> List[float]:
    """One row's answer as a list of scores (a dict answer: its first output)."""
    if isinstance(prediction, Mapping):
        prediction = next(iter(prediction.values()))
    return [float(v) for v in prediction] if isinstance(prediction, (list, tuple)) else [float(prediction)]


def wait_for_window_start(window_seconds: int, margin: float = 0.2) -> int:
    """Sleeps to just after the next request-log window starts; returns that span number."""
    now = time.time()
    span = request_log.span_for(now, window_seconds) + 1
    time.sleep(max(span * window_seconds + margin - now, 0.0))
    return span


def wait_for_window_end(span: int, window_seconds: int, flush_seconds: float) -> None:
    """Sleeps until span ``span``'s window has ended and the gateway's writer flushed it."""
    time.sleep(max((span + 1) * window_seconds + flush_seconds + 0.5 - time.time(), 0.0))


def send_quarter(cfg: PipelineConfig, url: str, quarter: int, rows: Sequence[Dict[str, Any]],
                 labels: Sequence[float], rows_per_request: int, deadline: float) -> SpanTraffic:
    """Sends ``rows`` in requests of ``rows_per_request``, posting each request's labels after
    its answer; stops early at ``deadline`` (``time.time()``: the window's end) so that the
    quarter stays in one request-log span."""
    model = cfg.serving.model_name
    traffic = SpanTraffic(quarter, request_log.span_for(time.time(), cfg.serving.request_log_window_seconds))
    with Client(url) as client:
        for start in range(0, len(rows), rows_per_request):
            if time.time() > deadline:
                break
            batch = list(rows[start:start + rows_per_request])
            # Unique within the run (the loop starts from an empty work dir, request log
            # included) and the same in every run: the canary routes by the request id's
            # hash, so a rerun of the loop sends the same requests to the candidate.
            request_id = f"q{quarter}-{start}"
            status, answer, _ = client.request("POST", f"/v1/models/{model}:predict", {"instances": batch},
                                               headers={"X-Request-Id": request_id})
            if status != 200:  # refused (4xx: invalid rows) or failed (5xx): no answer to score
                continue
            feedback = []
            for index, (row, prediction) in enumerate(zip(batch, answer["predictions"])):
                label = labels[start + index]
                truth = true_class(cfg.label, label, row)
                traffic.rows += 1
                traffic.correct += int(truth == predicted_class(_outputs(prediction), cfg.num_classes))
                feedback.append({"request_id": request_id, "row": index, "label": label})
            status, answer, _ = client.request("POST", f"/v1/models/{model}/feedback", {"feedback": feedback})
            if status != 200:
                raise TrafficError(f"quarter {quarter}, feedback for {request_id}: the gateway answered "
                                   f"{status}: {answer}")
    return traffic
