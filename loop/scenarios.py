"""The two faults the loop injects, made with the test fixtures' own makers.

* ``upstream_fault``: a broken feed (``testing.served_spans.shifted``, the shift the
  monitoring tests expect to be found): every payment in cash, fares x3, no company
  logged. Rows stay valid for the gateway (no out-of-domain value), so users are served
  and only monitoring can tell.
* ``push_broken_candidate``: a version copied into the push directory by hand, no
  pipeline run behind it: ``testing.tiny_model``'s model (the taxi export's signatures)
  with a bias that answers every row "big tipper".
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Sequence

from common.config import PipelineConfig
from serving.versions import complete_versions

BROKEN_BIAS = 10.0


def upstream_fault(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    from testing.served_spans import shifted

    return shifted(rows, out_of_domain=0)


def push_broken_candidate(cfg: PipelineConfig) -> int:
    """Pushes the broken model as the newest version (one above the newest on disk); returns it."""
    from testing.tiny_model import push_version, save_tiny_model

    version = max(complete_versions(cfg.push_dir), default=0) + 1
    with tempfile.TemporaryDirectory(dir=os.path.dirname(cfg.push_dir)) as scratch:
        push_version(cfg.push_dir, version, save_tiny_model(os.path.join(scratch, "broken"), cfg, BROKEN_BIAS))
    return version
