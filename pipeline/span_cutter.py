"""Cuts CSV data into quarterly spans by a timestamp column: ``span-<N>/data.csv``, same header.

So the span pipeline (configs/taxi-spans.yaml) has data in the layout a
production feed would deliver: the taxi CSV that ships in tfx, cut by
``trip_start_timestamp``, becomes 2013Q1 ... 2016Q4 -> span-1 ... span-16.
Spans count quarters (UTC) from the data's first quarter, starting at 1, so a
quarter without rows leaves a gap in the numbers rather than shifting later
spans. Rows keep their order; a row without a timestamp belongs to no span
and is counted, not written.

    python -m pipeline spans --config configs/taxi.yaml --out data/taxi_spans
"""
from __future__ import annotations

import csv
import datetime
import glob
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from common.config import PipelineConfig

SPAN_FILE = "data.csv"


class SpanCutError(ValueError):
    """The input cannot be cut: names the file, line, column or directory."""


@dataclass
class Span:
    number: int
    quarter: str  # e.g. "2013Q1"
    rows: int


def quarter_of(epoch_seconds: int) -> Tuple[int, int]:
    """(year, quarter 1..4) of a UTC timestamp."""
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.timezone.utc)
    return moment.year, (moment.month - 1) // 3 + 1


def timestamp_column(cfg: PipelineConfig) -> str:
    """The config's one ``kind: timestamp`` feature (the column to cut by when none is given)."""
    columns = [f.column for f in cfg.features if f.kind == "timestamp"]
    if len(columns) != 1:
        raise SpanCutError(f"{cfg.source_file}: expected exactly one feature of kind 'timestamp' to cut "
                           f"spans by, found {columns}; name the column with --column")
    return columns[0]


def _read(paths: List[str], column: str) -> Tuple[List[str], List[Tuple[Optional[Tuple[int, int]], List[str]]]]:
    """(header, [(quarter or None, row)]) of every file; headers must agree."""
    header, rows = None, []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            file_header = next(reader, None)
            if header is None:
                header = file_header
            if not file_header or file_header != header:
                raise SpanCutError(f"{path}: expected the header {header}, got {file_header}")
            if column not in header:
                raise SpanCutError(f"{path}: no column {column!r} to cut by; columns: {header}")
            index = header.index(column)
            for line, row in enumerate(reader, start=2):
                raw = row[index].strip() if index < len(row) else ""
                try:
                    rows.append((quarter_of(int(float(raw))) if raw else None, row))
                except (ValueError, OverflowError, OSError):
                    raise SpanCutError(f"{path}:{line}: column {column!r}: expected epoch seconds, "
                                       f"got {raw!r}") from None
    return header, rows


def cut_spans(paths: List[str], out_dir: str, column: str) -> Tuple[List[Span], int]:
    """Writes ``out_dir/span-<N>/data.csv`` per quarter; returns (spans, rows without a timestamp)."""
    if not paths:
        raise SpanCutError("no CSV files to cut")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise SpanCutError(f"{out_dir}: not empty; spans go into a new or empty directory")
    header, rows = _read(paths, column)
    quarters = sorted({q for q, _ in rows if q is not None})
    if not quarters:
        raise SpanCutError(f"{paths[0]}: no row has a value in column {column!r}")
    first_year, first_quarter = quarters[0]
    by_span: Dict[int, List[List[str]]] = {}
    for q, row in rows:
        if q is not None:
            by_span.setdefault((q[0] - first_year) * 4 + q[1] - first_quarter + 1, []).append(row)
    spans = []
    for number, span_rows in sorted(by_span.items()):
        directory = os.path.join(out_dir, f"span-{number}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, SPAN_FILE), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(span_rows)
        index = first_quarter - 1 + number - 1
        spans.append(Span(number, f"{first_year + index // 4}Q{index % 4 + 1}", len(span_rows)))
    return spans, sum(1 for q, _ in rows if q is None)


def cut_config_data(cfg: PipelineConfig, out_dir: str, column: Optional[str] = None) -> str:
    """Cuts the CSV files of a config's data directory; returns a printable summary."""
    paths = sorted(glob.glob(os.path.join(cfg.data_path, "*.csv")))
    if not paths:
        raise SpanCutError(f"{cfg.data_path}: no *.csv files (data.path of {cfg.source_file})")
    spans, undated = cut_spans(paths, out_dir, column or timestamp_column(cfg))
    lines = [f"  span-{s.number:<4} {s.quarter}  {s.rows:>7} rows" for s in spans]
    lines.append(f"{len(spans)} spans ({sum(s.rows for s in spans)} rows) written to {out_dir}"
                 + (f"; {undated} rows without a timestamp left out" if undated else ""))
    return "\n".join(lines)
