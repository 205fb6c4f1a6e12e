"""Labels in bulk from a CSV file (``python -m serving feedback labels.csv --config ...``).

The file has a header with ``request_id`` and ``label`` and optionally
``row`` (default 0); cells are typed by the label column's dtype. Every line
goes through the same checks as the endpoint (``service.Feedback``); the good
lines are stored, the bad ones reported by line number, so a fixed file can be
sent again (the lines already stored count as duplicates).
"""
from __future__ import annotations

import csv
import dataclasses
from typing import Any, Dict, List, Tuple

from serving.errors import BadRequest
from serving.feedback.service import ITEM_FIELDS, Feedback


@dataclasses.dataclass
class BulkReport:
    """What an import did; ``errors`` are (line number, message), line 1 being the header."""
    accepted: int = 0
    duplicates: int = 0
    errors: List[Tuple[int, str]] = dataclasses.field(default_factory=list)

    def summary(self) -> List[str]:
        lines = [f"accepted {self.accepted}, duplicates {self.duplicates}, errors {len(self.errors)}"]
        return lines + [f"line {line}: {message}" for line, message in self.errors]


def import_csv(path: str, model: str, feedback: Feedback) -> BulkReport:
    """Checks and stores every line of ``path`` for ``model``; raises ``ValueError`` when the
    header is not usable (nothing is stored then)."""
    report = BulkReport()
    items: List[Tuple[int, Dict[str, Any]]] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [name for name in ("request_id", "label") if name not in columns]
        unknown = [name for name in columns if name not in ITEM_FIELDS]
        if missing or unknown:
            raise ValueError(f"{path}: header {columns}: expected the columns request_id, label "
                             f"and optionally row (missing {missing}, unexpected {unknown})")
        for cells in reader:
            line = reader.line_num
            try:
                items.append((line, _item(cells, feedback)))
            except BadRequest as error:
                report.errors.append((line, error.message))
    outcome, errors = feedback.submit_each(model, items)
    report.accepted, report.duplicates = outcome.accepted, outcome.duplicates
    report.errors = sorted(report.errors + [(line, error.message) for line, error in errors])
    return report


def _item(cells: Dict[str, Any], feedback: Feedback) -> Dict[str, Any]:
    """One CSV record as a feedback item (label typed, empty row = 0)."""
    if None in cells:
        raise BadRequest("more cells than the header has columns")
    if any(value is None for value in cells.values()):
        raise BadRequest("fewer cells than the header has columns")
    item: Dict[str, Any] = {"request_id": cells["request_id"].strip()}
    label = cells["label"].strip()
    if label:
        item["label"] = feedback.spec.parse_text(label, "label")
    row = (cells.get("row") or "").strip()
    if row:
        try:
            item["row"] = int(row)
        except ValueError:
            raise BadRequest(f"row: expected a non-negative integer, got {row!r}") from None
    return item
