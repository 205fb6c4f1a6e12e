"""Taxi-shaped data at any size, for the scale bench: the embedded taxi CSV resampled with noise.

The rows are NOT new trips: each output row is a row of the 15,000-row taxi CSV
that ships inside tfx, drawn uniformly with replacement (fixed seed), with noise
added so that rows are not exact copies (exact copies would all hash to one
split and make the statistics degenerate):

- fare, tips, trip_miles and trip_seconds are multiplied by one log-normal
  factor per row (sigma ``NOISE_SIGMA``): the trip gets longer or shorter as a
  whole, and tips / fare -- the label ``big_tipper`` -- is unchanged;
- the four coordinates move by a Gaussian of ``COORDINATE_NOISE`` degrees
  (about 100 m), clipped to the schema's domain;
- the timestamp moves to another 15-minute slot of the same hour, so the hour,
  weekday and month columns still agree with it.

Empty cells stay empty and the categorical columns are kept, so the data passes
the taxi schema's checks and the label's share stays that of the source. This
is data for measuring cost (rows, bytes, distinct values of the same order as
real data), not for measuring model quality at scale: no new information
enters, so a model trained on 1.5 M of these rows is no better than one
trained on the 15,000 source rows.

The output is streamed: rows are drawn and written ``CHUNK_ROWS`` at a time,
so memory is the source table plus one chunk whatever ``rows`` is.

    python -m testing.taxi_scale --rows 150000 --out data/taxi_150k
    python -m pipeline run --config configs/taxi.yaml --set data.path=data/taxi_150k
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from common.paths import taxi_data_dir

SEED = 20260
CHUNK_ROWS = 10_000
NOISE_SIGMA = 0.05         # log-normal scale of the per-row trip factor (about +-5%)
COORDINATE_NOISE = 0.001   # degrees (about 100 m)
COORDINATE_DOMAIN = {"latitude": (41.0, 43.0), "longitude": (-89.0, -87.0)}
SCALED_MONEY = ("fare", "tips")
SCALED_FLOAT = ("trip_miles",)
SCALED_INT = ("trip_seconds",)
COORDINATES = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
TIMESTAMP = "trip_start_timestamp"
NUMERIC = (*SCALED_MONEY, *SCALED_FLOAT, *SCALED_INT, *COORDINATES)  # parsed once by read_source
SLOT_SECONDS = 900         # the taxi timestamps are rounded to 15 minutes


def source_csv() -> str:
    return os.path.join(taxi_data_dir(), "data.csv")


def _numbers(cells: np.ndarray) -> np.ndarray:
    """Floats with NaN for empty cells."""
    return np.array([float(c) if c != "" else np.nan for c in cells])


def read_source(path: str) -> Dict[str, np.ndarray]:
    """The source CSV as one array per column (15,000 rows: small, kept whole): the cells as
    strings, except the columns the noise rewrites, parsed once here rather than per output
    row (floats with NaN for empty cells; the timestamp as int64)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: expected taxi rows after the header, got none")
    missing = [c for c in (*NUMERIC, TIMESTAMP) if c not in header]
    if missing:
        raise ValueError(f"{path}: expected the taxi columns {missing} in the header {header}")
    table = np.array(rows, dtype=object)
    columns = {name: table[:, i] for i, name in enumerate(header)}
    columns.update({name: _numbers(columns[name]) for name in NUMERIC})
    columns[TIMESTAMP] = columns[TIMESTAMP].astype(np.int64)
    return columns


def _format(values: np.ndarray, fmt: str) -> List[str]:
    return ["" if np.isnan(v) else fmt.format(v) for v in values]


def noisy_chunk(source: Dict[str, np.ndarray], n: int, rng: np.random.Generator) -> Dict[str, List[str]]:
    """``n`` rows drawn from ``source`` (``read_source``) with the noise the module docstring describes."""
    size = len(next(iter(source.values())))
    pick = rng.integers(0, size, n)
    out = {name: list(column[pick]) for name, column in source.items() if name not in (*NUMERIC, TIMESTAMP)}
    factor = np.exp(rng.normal(0.0, NOISE_SIGMA, n))
    for names, decimals, fmt in ((SCALED_MONEY + SCALED_FLOAT, 2, "{:.2f}"), (SCALED_INT, 0, "{:.0f}")):
        for name in names:
            out[name] = _format(np.round(source[name][pick] * factor, decimals), fmt)
    for name in COORDINATES:
        low, high = COORDINATE_DOMAIN[name.split("_", 1)[1]]
        moved = source[name][pick] + rng.normal(0.0, COORDINATE_NOISE, n)
        out[name] = _format(np.clip(moved, low, high), "{:.6f}")
    stamps = source[TIMESTAMP][pick]
    hour_start = stamps - stamps % 3600
    out[TIMESTAMP] = [str(s) for s in hour_start + SLOT_SECONDS * rng.integers(0, 3600 // SLOT_SECONDS, n)]
    return out


def write_rows(out_dir: str, rows: int, seed: int = SEED, source: Optional[str] = None,
               chunk_rows: int = CHUNK_ROWS) -> str:
    """Writes ``<out_dir>/data.csv`` with ``rows`` rows (same header as the source); returns its path.

    Streams one chunk of ``chunk_rows`` at a time; the same ``seed`` and
    ``chunk_rows`` give the same file byte for byte.
    """
    if rows <= 0:
        raise ValueError(f"rows: expected a positive number of rows, got {rows}")
    table = read_source(source or source_csv())
    header = list(table)
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "data.csv")
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for start in range(0, rows, chunk_rows):
            chunk = noisy_chunk(table, min(chunk_rows, rows - start), rng)
            writer.writerows(zip(*(chunk[name] for name in header)))
    os.replace(path + ".tmp", path)  # a half-written file is never taken for data
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.taxi_scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="rows to write, e.g. 150000 or 1500000")
    parser.add_argument("--out", required=True, help="directory for data.csv (the config's data.path)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        print(write_rows(args.out, args.rows, args.seed))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
