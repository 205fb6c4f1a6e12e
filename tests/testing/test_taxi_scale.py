"""testing.taxi_scale: taxi-shaped rows at any size, seeded, written in bounded memory."""
import csv
import os
import tracemalloc

import numpy as np
import pytest

from testing import taxi_scale

HEADER = ["pickup_community_area", "fare", "trip_start_month", "trip_start_hour", "trip_start_day",
          "trip_start_timestamp", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
          "dropoff_longitude", "trip_miles", "pickup_census_tract", "dropoff_census_tract", "payment_type",
          "company", "trip_seconds", "dropoff_community_area", "tips"]
SOURCE_ROWS = [
    ["8", "12.45", "5", "19", "6", "1400269500", "41.9", "-87.63", "41.88", "-87.62", "2.1", "", "",
     "Credit Card", "Taxi Affiliation Services", "600", "32", "3.00"],
    ["", "5.00", "3", "7", "2", "1362638700", "", "", "", "", "0", "", "17031081600", "Cash", "", "", "", "0"],
]


def _source(tmp_path, rows=SOURCE_ROWS):
    path = tmp_path / "source.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return str(path)


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_rows_keep_the_taxi_shape_and_the_label(tmp_path):
    rows = _read(taxi_scale.write_rows(str(tmp_path / "out"), 2_500, source=_source(tmp_path), chunk_rows=1000))
    assert rows[0] == HEADER and len(rows) == 2_501
    col = {name: i for i, name in enumerate(HEADER)}
    for row in rows[1:]:
        source = SOURCE_ROWS[0] if row[col["payment_type"]] == "Credit Card" else SOURCE_ROWS[1]
        for name in ("pickup_community_area", "trip_start_month", "trip_start_hour", "trip_start_day",
                     "pickup_census_tract", "dropoff_census_tract", "company", "dropoff_community_area"):
            assert row[col[name]] == source[col[name]], name  # categories are kept
        for name in HEADER:
            assert (row[col[name]] == "") == (source[col[name]] == ""), name  # empty stays empty
        stamp, original = int(row[col["trip_start_timestamp"]]), int(source[col["trip_start_timestamp"]])
        assert stamp // 3600 == original // 3600 and stamp % 900 == 0  # same hour, 15-minute slots
        fare, tips = float(row[col["fare"]]), float(row[col["tips"]])
        assert (tips > 0.2 * fare) == (float(source[col["tips"]]) > 0.2 * float(source[col["fare"]]))
        if source is SOURCE_ROWS[0]:
            factor = fare / 12.45
            assert 0.7 < factor < 1.4 and float(row[col["trip_seconds"]]) == pytest.approx(600 * factor, abs=1)
            assert abs(float(row[col["pickup_latitude"]]) - 41.9) < 0.01
            assert row[col["trip_seconds"]].isdigit()  # still an int column
    fares = np.array([float(r[col["fare"]]) for r in rows[1:] if r[col["payment_type"]] == "Credit Card"])
    assert len(np.unique(fares)) > 100  # noise: no longer copies of one row


def test_the_seed_fixes_the_file(tmp_path):
    source = _source(tmp_path)
    first = taxi_scale.write_rows(str(tmp_path / "a"), 3_000, seed=7, source=source)
    second = taxi_scale.write_rows(str(tmp_path / "b"), 3_000, seed=7, source=source)
    other = taxi_scale.write_rows(str(tmp_path / "c"), 3_000, seed=8, source=source)
    with open(first, "rb") as a, open(second, "rb") as b, open(other, "rb") as c:
        data = a.read()
        assert data == b.read() and data != c.read()


def test_memory_does_not_grow_with_the_rows(tmp_path):
    source = _source(tmp_path)

    def peak(rows):
        tracemalloc.start()
        taxi_scale.write_rows(str(tmp_path / f"out{rows}"), rows, source=source, chunk_rows=1_000)
        _, high = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return high

    small, large = peak(2_000), peak(20_000)
    assert large < 1.5 * small, (small, large)  # one chunk in memory, not the output
    assert os.path.getsize(tmp_path / "out20000" / "data.csv") > 9 * os.path.getsize(tmp_path / "out2000" / "data.csv")


def test_the_embedded_taxi_csv_is_the_default_source(tmp_path):
    rows = _read(taxi_scale.write_rows(str(tmp_path / "out"), 10))
    assert rows[0] == _read(taxi_scale.source_csv())[0] and len(rows) == 11


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="rows: expected a positive number"):
        taxi_scale.write_rows(str(tmp_path / "out"), 0, source=_source(tmp_path))
    with pytest.raises(ValueError, match="expected the taxi columns"):
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n")
        taxi_scale.write_rows(str(tmp_path / "out"), 5, source=str(bad))
    assert taxi_scale.main(["--rows", "-1", "--out", str(tmp_path / "cli")]) == 2
