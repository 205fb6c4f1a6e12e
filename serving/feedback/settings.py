"""How a gateway gets its feedback endpoint: settings from the dataset config, then wiring.

``FeedbackSettings.from_config`` (the CLI) reads the label section, the schema
and ``serving.feedback_*``; ``attach`` (``serving.server.build_gateway``)
opens the index and the label store over the gateway's request log and wraps
the log so each logged request is indexed. When feedback cannot work (no
request log, no dataset config, a label that a joined row could not compute)
the endpoint stays and answers 404 with the reason.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Optional, Tuple

from common.config import PipelineConfig
from serving.feedback.index import IndexedRequestLog
from serving.feedback.labels import FeedbackUnavailable, LabelSpec
from serving.feedback.service import Feedback

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FeedbackSettings:
    """What the gateway needs for feedback (``spec`` None: ``unavailable`` says why)."""
    spec: Optional[LabelSpec]
    unavailable: str = ""
    window_spans: int = 24
    max_request_ids: int = 1_000_000

    @classmethod
    def from_config(cls, cfg: PipelineConfig, schema_path: Optional[str] = None) -> "FeedbackSettings":
        serving = cfg.serving
        try:
            spec: Optional[LabelSpec] = LabelSpec.from_config(cfg, schema_path)
            unavailable = ""
        except FeedbackUnavailable as err:
            spec, unavailable = None, f"feedback is not available for {cfg.source_file}: {err}"
        return cls(spec, unavailable, serving.feedback_window_spans, serving.feedback_max_request_ids)


def attach(settings: Optional[FeedbackSettings], request_log: Any) -> Tuple[Any, Optional[Feedback], str]:
    """(request log to give the gateway, feedback or None, why not).

    With feedback, the returned log is ``request_log`` wrapped so that each
    request it logs is indexed at once.
    """
    if request_log is None:
        return None, None, ""
    if settings is None:
        return request_log, None, ("feedback is not enabled on this gateway: it needs the dataset "
                                   "config (--config), whose label section says what a label is")
    if settings.spec is None:
        logger.warning("%s", settings.unavailable)
        return request_log, None, settings.unavailable
    feedback = Feedback.open(request_log.directory, settings.spec, request_log.window_seconds,
                             settings.window_spans, settings.max_request_ids)
    logger.info("Feedback labels: %d request ids indexed from the last %d spans of %s",
                len(feedback.index), settings.window_spans, request_log.directory)
    return IndexedRequestLog(request_log, feedback.index), feedback, ""
