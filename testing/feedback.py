"""Request logs with known requests, for the feedback tests and benchmark."""
from typing import Any, Dict, List, Optional

from common.config import PipelineConfig
from serving.request_log import RequestLog
from testing.tiny_model import INSTANCE


def instance(number: int) -> Dict[str, Any]:
    """A complete taxi serving row whose fare tells rows apart (fare = 5 + number)."""
    return dict(INSTANCE, fare=5.0 + number)


def log_requests(log_dir: str, cfg: PipelineConfig, request_ids: List[str], rows: int = 1,
                 timestamp: Optional[float] = None, model: str = "taxi") -> None:
    """Logs one primary request of ``rows`` rows per id as the gateway does (row r of
    request n has fare 5 + n * rows + r) and closes the log: every row is on disk after."""
    log = RequestLog.from_config(cfg, log_dir)
    try:
        for number, request_id in enumerate(request_ids):
            features = [instance(number * rows + r) for r in range(rows)]
            if not log.log(request_id=request_id, model=model, version=1, role="primary",
                           features=features, outputs=[[0.5]] * rows, latency_ms=1.0,
                           timestamp=timestamp):
                raise RuntimeError(f"request {request_id} was dropped by the request log")
    finally:
        log.close()
