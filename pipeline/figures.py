"""How the run summary and the HTML report show a figure they read back from a run.

Metrics arrive as TFMA and our components wrote them: numbers, or text (TFMA's
JSON writes NaN as "NaN"), or not at all; a report must show each of them and
never fail on one.
"""
from __future__ import annotations

from typing import Optional


def figure(value: object) -> Optional[str]:
    """Numbers to 4 decimals, text as it is, None for a missing value (the caller
    skips the line or shows a dash)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return str(value)
