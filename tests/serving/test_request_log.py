"""serving.request_log: served rows as tf.Example spans that TFDV and ExampleGen read."""
import glob
import hashlib
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from serving import log_files, request_log
from serving.request_log import (
    EXAMPLE_GEN_PATTERN,
    LATENCY_MS,
    MODEL,
    OUTPUT,
    REQUEST_ID,
    ROLE,
    ROW,
    TIMESTAMP_MS,
    VERSION,
    RequestLog,
    RequestLogError,
    read_window,
)
from testing import served_spans
from tests.conftest import ROWS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTYPES = {"fare": "float", "trip_seconds": "int", "company": "string", "payment_type": "string",
          "dropoff_latitude": "float"}
WINDOW = 3600
T0 = 1_800_000_000.0  # inside span 500000 with one-hour windows
SPAN0 = int(T0 // WINDOW)


def served_rows():
    """The taxi test rows as a REST client sends them: JSON values, no label, missing = absent."""
    rows = []
    for row in ROWS:
        sent = {}
        for name, values in row.items():
            if name == "tips" or not values:
                continue
            value = values[0]
            sent[name] = value.decode() if isinstance(value, bytes) else value
        rows.append(sent)
    return rows


def value_of(example, name):
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def all_bytes(directory):
    return b"".join(open(p, "rb").read() for p in glob.glob(os.path.join(directory, "**", "*"), recursive=True)
                    if os.path.isfile(p))


def test_every_row_is_written_once_with_its_metadata(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        for i in range(20):
            rows = [{"fare": 10.0 + i, "trip_seconds": 60 * i, "company": f"C{i}", "payment_type": "Cash"},
                    {"fare": [5.5], "trip_seconds": [], "payment_type": ["Credit Card"]}]
            assert log.log(request_id=f"req-{i}", model="taxi", version=3, role="primary", features=rows,
                           outputs=[[0.25, 0.75], {"probabilities": [0.9, 0.1], "classes": 0}],
                           latency_ms=1.5 + i, timestamp=T0 + i)
        assert log.flush()
        assert log.stats()["written_rows"] == 40
    examples = read_window(str(tmp_path), SPAN0)
    assert len(examples) == 40
    keys = sorted((value_of(e, REQUEST_ID)[0], value_of(e, ROW)[0]) for e in examples)
    assert keys == sorted((f"req-{i}".encode(), r) for i in range(20) for r in (0, 1))
    first = next(e for e in examples if value_of(e, REQUEST_ID) == [b"req-7"] and value_of(e, ROW) == [0])
    assert value_of(first, "fare") == [17.0] and value_of(first, "trip_seconds") == [420]
    assert value_of(first, "company") == [b"C7"] and value_of(first, "payment_type") == [b"Cash"]
    assert "dropoff_latitude" not in first.features.feature  # missing stays absent
    assert value_of(first, MODEL) == [b"taxi"] and value_of(first, VERSION) == [3]
    assert value_of(first, ROLE) == [b"primary"] and value_of(first, LATENCY_MS) == [8.5]
    assert value_of(first, TIMESTAMP_MS) == [int((T0 + 7) * 1000)]
    assert value_of(first, OUTPUT) == pytest.approx([0.25, 0.75])
    second = next(e for e in examples if value_of(e, REQUEST_ID) == [b"req-7"] and value_of(e, ROW) == [1])
    assert "trip_seconds" not in second.features.feature and "company" not in second.features.feature
    assert value_of(second, OUTPUT + "_probabilities") == pytest.approx([0.9, 0.1])
    assert value_of(second, OUTPUT + "_classes") == [0]


def test_shadow_rows_go_to_their_own_files(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        for role, version in (("primary", 1), ("shadow", 2)):
            log.log(request_id="r", model="taxi", version=version, role=role, features=[{"fare": 1.0}],
                    outputs=[0.5], latency_ms=1, timestamp=T0)
    assert [value_of(e, VERSION) for e in read_window(str(tmp_path), SPAN0)] == [[1]]
    assert [value_of(e, VERSION) for e in read_window(str(tmp_path), SPAN0, role="shadow")] == [[2]]
    assert sorted(value_of(e, VERSION)[0] for e in read_window(str(tmp_path), SPAN0, role=None)) == [1, 2]


def test_sensitive_features_are_dropped_or_hashed_never_written_in_clear(tmp_path, monkeypatch):
    monkeypatch.setenv(request_log.SALT_ENV, "pepper")
    secret_company, secret_latitude = "Secret Cab Company 4711", 41.876543
    with RequestLog(str(tmp_path), DTYPES, {"company": "hash", "dropoff_latitude": "drop"},
                    window_seconds=WINDOW) as log:
        for rid in ("a", "b"):
            log.log(request_id=rid, model="taxi", version=1, role="primary", latency_ms=1, timestamp=T0,
                    features=[{"fare": 3.0, "company": secret_company, "dropoff_latitude": secret_latitude}],
                    outputs=[0.1])
    data = all_bytes(str(tmp_path))
    assert secret_company.encode() not in data
    assert struct.pack("<f", secret_latitude) not in data and b"41.876543" not in data
    examples = read_window(str(tmp_path), SPAN0)
    assert len(examples) == 2
    expected = hashlib.sha256(b"pepper\0company\0" + secret_company.encode()).hexdigest().encode()
    assert [value_of(e, "company") for e in examples] == [[expected], [expected]]  # joinable
    assert all("dropoff_latitude" not in e.features.feature for e in examples)
    assert all(value_of(e, "fare") == [3.0] for e in examples)


def test_hashing_needs_a_salt(tmp_path, monkeypatch):
    monkeypatch.delenv(request_log.SALT_ENV, raising=False)
    with pytest.raises(RequestLogError, match=r"\['company'\] are hashed.*\$REQUEST_LOG_SALT"):
        RequestLog(str(tmp_path), DTYPES, {"company": "hash"})
    RequestLog(str(tmp_path), DTYPES, {"company": "drop"}).close()  # dropping needs none


@pytest.mark.parametrize("kwargs, message", [
    ({"feature_dtypes": {"fare": "double"}}, r"feature_dtypes.fare: expected one of \['int', 'float', 'string'\]"),
    ({"feature_dtypes": {"__log_x": "int"}}, "reserved"),
    ({"sensitive": {"tips": "drop"}}, "sensitive.tips: expected one of the logged features"),
    ({"sensitive": {"fare": "encrypt"}}, r"sensitive.fare: expected one of \['drop', 'hash'\]"),
    ({"window_seconds": 0}, "window_seconds: expected a positive integer"),
])
def test_bad_configuration_names_the_field(tmp_path, kwargs, message):
    arguments = {"directory": str(tmp_path), "feature_dtypes": DTYPES} | kwargs
    with pytest.raises(RequestLogError, match=message):
        RequestLog(**arguments)


def test_misuse_names_the_field_and_bad_rows_are_counted_not_fatal(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        with pytest.raises(RequestLogError, match="role: expected one of"):
            log.log(request_id="r", model="m", version=1, role="canary", features=[], outputs=[], latency_ms=1)
        with pytest.raises(RequestLogError, match=r"outputs: expected one output per row \(2 rows\), got 1"):
            log.log(request_id="r", model="m", version=1, role="primary", features=[{}, {}], outputs=[1],
                    latency_ms=1)
        log.log(request_id="r", model="m", version=1, role="primary", latency_ms=1, timestamp=T0,
                features=[{"trip_seconds": "soon"}, {"trip_seconds": 2.5}, {"trip_seconds": 2**70},
                          {"trip_seconds": 7.0}],
                outputs=[0, 0, 0, 0])
        log.flush()
        stats = log.stats()
    assert (stats["written_rows"], stats["failed_rows"]) == (1, 3)
    assert [value_of(e, "trip_seconds") for e in read_window(str(tmp_path), SPAN0)] == [[7]]


def test_window_roll_creates_a_new_span_directory(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=60) as log:
        for t in (0, 30, 59.9, 60, 61, 185):
            log.log(request_id=f"t{t}", model="m", version=1, role="primary", features=[{"fare": 1.0}],
                    outputs=[0], latency_ms=1, timestamp=T0 + t)
            log.flush()
        assert log.stats()["files_opened"] == 3
    first = int(T0 // 60)
    assert request_log.list_spans(str(tmp_path)) == [first, first + 1, first + 3]
    assert [len(read_window(str(tmp_path), s)) for s in (first, first + 1, first + 3)] == [3, 2, 1]
    assert request_log.closed_spans(str(tmp_path), 60, now=T0 + 185) == [first, first + 1]


def test_a_late_row_for_an_earlier_window_lands_in_its_own_span(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=60) as log:
        for t in (0, 70, 10):
            log.log(request_id=f"t{t}", model="m", version=1, role="primary", features=[{"fare": 1.0}],
                    outputs=[0], latency_ms=1, timestamp=T0 + t)
            log.flush()
    first = int(T0 // 60)
    assert [len(read_window(str(tmp_path), s)) for s in (first, first + 1)] == [2, 1]


def slow_disk(monkeypatch, seconds=0.0, gate=None):
    """Injects a slow (or, with ``gate``, stalled until it is set) disk under the writer."""
    real_write = log_files.write_all

    def write(fd, data):
        if gate is not None:
            gate.wait(30)
        time.sleep(seconds)
        real_write(fd, data)

    monkeypatch.setattr(log_files, "write_all", write)


def log_one(log, rid, rows=1):
    return log.log(request_id=rid, model="m", version=1, role="primary", features=[{"fare": 1.0}] * rows,
                   outputs=[0] * rows, latency_ms=1, timestamp=T0)


def test_a_full_queue_holds_the_caller_back_instead_of_dropping(tmp_path, monkeypatch):
    slow_disk(monkeypatch, seconds=0.05)
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, queue_rows=5) as log:
        assert log_one(log, "big", rows=10)  # larger than the queue: in once the queue is empty
        accepted = sum(log_one(log, f"r{i}", rows=2) for i in range(20))
        assert log.flush()
        stats = log.stats()
    assert accepted == 20
    assert stats["waited_requests"] > 0 and stats["wait_seconds"] > 0 and stats["waiting_requests"] == 0
    assert (stats["logged_rows"], stats["written_rows"], stats["dropped_rows"]) == (50, 50, 0)
    assert len(read_window(str(tmp_path), SPAN0)) == 50


def test_rows_older_than_the_flush_interval_hold_callers_back(tmp_path, monkeypatch):
    """The queue is short in rows but old: the writer is 0.4 s behind with a 0.1 s flush interval."""
    slow_disk(monkeypatch, seconds=0.4)
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, flush_seconds=0.1) as log:
        log_one(log, "first")      # the writer takes it and spends 0.4 s writing
        time.sleep(0.05)
        log_one(log, "second")     # queued behind it
        time.sleep(0.15)           # now older than the flush interval
        start = time.monotonic()
        assert log_one(log, "third")
        held = time.monotonic() - start
    assert held >= 0.15, held
    assert log.stats()["written_rows"] == 3


def test_a_stalled_writer_drops_only_after_the_bounded_wait_and_counts(tmp_path, monkeypatch):
    gate = threading.Event()
    slow_disk(monkeypatch, gate=gate)
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, queue_rows=2, max_wait_seconds=0.3) as log:
        assert log_one(log, "a") and log_one(log, "b")
        time.sleep(0.05)
        start = time.monotonic()
        assert not log_one(log, "c")  # the disk hangs: give up after 0.3 s
        assert 0.25 <= time.monotonic() - start < 5
        assert log.stats()["dropped_rows"] == 1
        gate.set()
        assert log.flush()
        stats = log.stats()
    assert (stats["written_rows"], stats["dropped_rows"]) == (2, 1)


def test_files_are_fsynced_every_flush_interval_without_a_flush_call(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW, flush_seconds=0.1) as log:
        log_one(log, "a")
        deadline = time.monotonic() + 10
        while log.stats()["syncs"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.stats()["syncs"] >= 2
        assert len(read_window(str(tmp_path), SPAN0)) == 1


def test_rows_logged_after_close_are_written_before_log_returns(tmp_path):
    log = RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW)
    log_one(log, "before")
    log.close()
    assert log_one(log, "after")  # a request finishing during shutdown: still logged, synchronously
    ids = sorted(value_of(e, REQUEST_ID)[0] for e in read_window(str(tmp_path), SPAN0))
    assert ids == [b"after", b"before"]
    stats = log.stats()
    assert (stats["logged_rows"], stats["written_rows"], stats["late_rows"], stats["dropped_rows"]) == (2, 2, 1, 0)


@pytest.mark.integration
def test_a_process_that_exits_without_close_still_writes_every_row(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from serving.request_log import RequestLog
        log = RequestLog(sys.argv[1], {{"fare": "float"}}, window_seconds={WINDOW}, flush_seconds=30)
        for i in range(2000):
            log.log(request_id=f"r{{i}}", model="m", version=1, role="primary", latency_ms=1.0,
                    timestamp={T0}, features=[{{"fare": float(i)}}], outputs=[0.5])
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env, timeout=240, check=True)
    assert len(read_window(str(tmp_path), SPAN0)) == 2000


def test_a_torn_last_record_is_skipped_and_a_corrupt_one_is_an_error(tmp_path):
    from serving import tfrecord

    path = tmp_path / "f.tfrecord"
    frames = [tfrecord.frame(f"record {i}".encode()) for i in range(3)]
    path.write_bytes(b"".join(frames) + frames[0][:9])
    assert list(tfrecord.read_records(str(path))) == [b"record 0", b"record 1", b"record 2"]
    path.write_bytes(b"".join(frames) + frames[0][:-2])
    assert len(list(tfrecord.read_records(str(path)))) == 3
    damaged = bytearray(b"".join(frames))
    damaged[len(frames[0]) + 14] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(tfrecord.CorruptRecordError, match=r"f.tfrecord: bad data checksum .* at byte 24"):
        list(tfrecord.read_records(str(path)))


def test_rows_of_different_shapes_in_one_batch_are_each_written_right(tmp_path):
    """Columns of mixed value types (fast path refused) and outputs of different shapes."""
    rows = [{"fare": 1.0, "trip_seconds": 7.0, "company": 5}, {"fare": [2, 3.5], "trip_seconds": [8]},
            {"fare": None, "company": {"b64": "eA=="}}, {"fare": "bad"}]
    outputs = [[0.5], {"p": [0.1, 0.9]}, "yes", [1, 2]]
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        log.log(request_id="r", model="m", version=1, role="primary", features=rows, outputs=outputs,
                latency_ms=1, timestamp=T0)
        assert log.flush()
        assert log.stats()["failed_rows"] == 1
    by_row = {value_of(e, ROW)[0]: e for e in read_window(str(tmp_path), SPAN0)}
    assert sorted(by_row) == [0, 1, 2]
    assert value_of(by_row[0], "trip_seconds") == [7] and value_of(by_row[0], "company") == [b"5"]
    assert value_of(by_row[1], "fare") == [2.0, 3.5] and value_of(by_row[1], OUTPUT + "_p") == pytest.approx([0.1, 0.9])
    assert "fare" not in by_row[2].features.feature and value_of(by_row[2], "company") == [b"x"]
    assert value_of(by_row[0], OUTPUT) == [0.5] and value_of(by_row[2], OUTPUT) == [b"yes"]


def test_several_writers_share_a_directory_with_unique_files(tmp_path):
    logs = [RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) for _ in range(3)]
    for n, log in enumerate(logs):
        for i in range(10):
            log.log(request_id=f"w{n}-{i}", model="m", version=1, role="primary", features=[{"fare": 1.0}],
                    outputs=[0], latency_ms=1, timestamp=T0)
    for log in logs:
        log.close()
    assert len(glob.glob(request_log.window_glob(str(tmp_path), SPAN0))) == 3
    ids = sorted(value_of(e, REQUEST_ID)[0] for e in read_window(str(tmp_path), SPAN0))
    assert ids == sorted(f"w{n}-{i}".encode() for n in range(3) for i in range(10))


@pytest.mark.integration
def test_a_crashed_process_leaves_complete_readable_records(tmp_path):
    """The process dies (os._exit, no close, no flush) right after its rows reach the writer."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from serving.request_log import RequestLog
        log = RequestLog(sys.argv[1], {{"fare": "float", "company": "string"}}, window_seconds={WINDOW})
        for i in range(500):
            log.log(request_id=f"r{{i}}", model="m", version=1, role="primary", latency_ms=1.0,
                    timestamp={T0}, features=[{{"fare": float(i), "company": "x" * 200}}], outputs=[0.5])
        while log.stats()["written_rows"] < 300:
            time.sleep(0.001)
        os._exit(3)
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env, timeout=240)
    assert result.returncode == 3
    examples = read_window(str(tmp_path), SPAN0)  # a torn record would raise DataLossError
    assert 300 <= len(examples) <= 500
    fares = sorted(value_of(e, "fare")[0] for e in examples)
    assert fares == [float(i) for i in range(len(examples))]


def test_config_wiring_uses_the_dataset_features_and_sensitive_fields(tmp_path, taxi_config):
    with RequestLog.from_config(taxi_config, directory=str(tmp_path)) as log:
        assert log.window_seconds == taxi_config.serving.request_log_window_seconds
        log.log(request_id="r", model="taxi", version=1, role="primary", features=served_rows(),
                outputs=[0.1, 0.2, 0.3], latency_ms=2.0, timestamp=T0)
    examples = read_window(str(tmp_path), log.span_for(T0))
    assert len(examples) == 3
    for example in examples:
        for name in taxi_config.serving.sensitive_features:
            assert name not in example.features.feature
        assert "tips" not in example.features.feature  # not a model feature: never logged


def test_tfdv_reads_a_span_and_it_validates_against_the_serving_environment(tmp_path, taxi_config):
    import tensorflow_data_validation as tfdv

    # Rows of the CSV the curated schema was written from, so its presence floors hold.
    rows, _ = served_spans.taxi_rows(taxi_config, 300, seed=7)
    with RequestLog.from_config(taxi_config, directory=str(tmp_path)) as log:
        for i in range(0, len(rows), 3):
            log.log(request_id=f"r{i}", model="taxi", version=1, role="primary", features=rows[i:i + 3],
                    outputs=[[0.5]] * len(rows[i:i + 3]), latency_ms=1.0, timestamp=T0)
        log.log(request_id="s", model="taxi", version=2, role="shadow", features=rows[:3], outputs=[[0.4]] * 3,
                latency_ms=1.0, timestamp=T0)
    span = log.span_for(T0)
    stats = tfdv.generate_statistics_from_tfrecord(data_location=request_log.window_glob(str(tmp_path), span))
    dataset = stats.datasets[0]
    assert dataset.num_examples == len(rows)  # primary rows only: shadow answers are not counted twice
    names = {f.path.step[0] for f in dataset.features}
    raw = {f.name for f in taxi_config.features} - set(taxi_config.serving.sensitive_features)
    assert raw <= names
    schema = tfdv.load_schema_text(taxi_config.schema_path)
    anomalies = tfdv.validate_statistics(stats, schema, environment="SERVING")
    assert set(anomalies.anomaly_info) == {n for n in names if request_log.is_metadata(n)}
    stripped = request_log.strip_metadata(stats)
    assert {f.path.step[0] for f in stripped.datasets[0].features} == raw
    clean = tfdv.validate_statistics(stripped, schema, environment="SERVING")
    assert dict(clean.anomaly_info) == {}, clean
    # And a real anomaly in served traffic is still caught once metadata is stripped.
    bad = [dict(row, payment_type="Bitcoin") for row in rows[:30]]
    with RequestLog.from_config(taxi_config, directory=str(tmp_path / "bad")) as log:
        log.log(request_id="b", model="taxi", version=1, role="primary", features=bad, outputs=[0] * len(bad),
                latency_ms=1.0, timestamp=T0)
    bad_stats = tfdv.generate_statistics_from_tfrecord(
        data_location=request_log.window_glob(str(tmp_path / "bad"), span))
    found = tfdv.validate_statistics(request_log.strip_metadata(bad_stats), schema, environment="SERVING")
    assert set(found.anomaly_info) == {"payment_type"}


def test_example_gen_span_pattern_resolves_the_newest_span(tmp_path):
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2

    with RequestLog(str(tmp_path), DTYPES, window_seconds=60) as log:
        for t in (0, 125):
            log.log(request_id=f"t{t}", model="m", version=1, role="primary", features=[{"fare": 1.0}],
                    outputs=[0], latency_ms=1, timestamp=T0 + t)
            log.log(request_id=f"t{t}", model="m", version=2, role="shadow", features=[{"fare": 1.0}],
                    outputs=[0], latency_ms=1, timestamp=T0 + t)
    splits = [example_gen_pb2.Input.Split(name="single_split", pattern=EXAMPLE_GEN_PATTERN)]
    _, span, version = utils.calculate_splits_fingerprint_span_and_version(str(tmp_path), splits)
    assert span == int((T0 + 125) // 60) and version is None
    assert splits[0].pattern == f"span-{span}/primary-*.tfrecord"
    assert len(glob.glob(os.path.join(str(tmp_path), splits[0].pattern))) == 1


def test_values_round_trip_exactly(tmp_path):
    """Extremes of each type, TF Serving binary strings, unicode names and every output shape."""
    dtypes = {"i": "int", "f": "float", "s": "string", "ü-name": "string"}
    row = {"i": [-1, 0, 2**63 - 1, -(2**63), 300], "f": [1.5, -0.0, 1e39, float("inf")],
           "s": ["", "x" * 300, {"b64": "AAE="}], "ü-name": "é"}
    with RequestLog(str(tmp_path), dtypes, window_seconds=WINDOW) as log:
        log.log(request_id="r" * 200, model="m", version=2**40, role="primary", features=[row],
                outputs=[{"scores": [0.5, 2.0], "labels": ["a", "b"], "nested": [[1, 2], [3]], "odd": [1, "x"]}],
                latency_ms=0.25, timestamp=T0)
    (example,) = read_window(str(tmp_path), SPAN0)
    assert value_of(example, "i") == [-1, 0, 2**63 - 1, -(2**63), 300]
    assert value_of(example, "f") == [1.5, -0.0, float("inf"), float("inf")]
    assert value_of(example, "s") == [b"", b"x" * 300, b"\x00\x01"]
    assert value_of(example, "ü-name") == ["é".encode()]
    assert value_of(example, REQUEST_ID) == [b"r" * 200] and value_of(example, VERSION) == [2**40]
    assert value_of(example, OUTPUT + "_scores") == [0.5, 2.0]
    assert value_of(example, OUTPUT + "_labels") == [b"a", b"b"]
    assert value_of(example, OUTPUT + "_nested") == [1, 2, 3]
    assert value_of(example, OUTPUT + "_odd") == [b'[1, "x"]']
    assert value_of(example, LATENCY_MS) == [0.25]


def test_concurrent_loggers_write_every_row_once(tmp_path):
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        def worker(n):
            for i in range(200):
                log.log(request_id=f"t{n}-{i}", model="m", version=1, role="primary",
                        features=[{"fare": float(i)}, {"fare": float(-i)}], outputs=[0, 1], latency_ms=1,
                        timestamp=T0)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    keys = [(value_of(e, REQUEST_ID)[0], value_of(e, ROW)[0]) for e in read_window(str(tmp_path), SPAN0)]
    assert len(keys) == len(set(keys)) == 8 * 200 * 2
    assert log.stats()["dropped_rows"] == 0


class ExplodingRow(dict):
    def get(self, key, default=None):
        raise RuntimeError("a bug in a row object")


def test_write_errors_are_counted_and_the_writer_keeps_going(tmp_path):
    (tmp_path / f"span-{SPAN0 + 1}").write_text("a file where the span directory should be")
    with RequestLog(str(tmp_path), DTYPES, window_seconds=WINDOW) as log:
        log.log(request_id="bug", model="m", version=1, role="primary", features=[ExplodingRow(fare=1.0)],
                outputs=[0], latency_ms=1, timestamp=T0)
        log.log(request_id="disk", model="m", version=1, role="primary", features=[{"fare": 1.0}] * 2,
                outputs=[0, 0], latency_ms=1, timestamp=T0 + WINDOW)
        assert log.flush()
        log.log(request_id="ok", model="m", version=1, role="primary", features=[{"fare": 2.0}],
                outputs=[0], latency_ms=1, timestamp=T0)
        assert log.flush()
        stats = log.stats()
    assert (stats["written_rows"], stats["failed_rows"], stats["queued_rows"]) == (1, 3, 0)
    assert [value_of(e, REQUEST_ID) for e in read_window(str(tmp_path), SPAN0)] == [[b"ok"]]
