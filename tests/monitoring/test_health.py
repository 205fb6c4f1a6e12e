"""Software health from /metrics text: the gateway's own exposition parsed back, p99 as Prometheus computes it."""
import math

import pytest

from common.serving_contract import INFERENCE_VERBS
from monitoring.health import histogram_quantile, parse_samples, version_health
from serving.metrics import DEFAULT_BUCKETS, Metrics


def test_error_rate_counts_5xx_per_version_and_client_errors_apart():
    metrics = Metrics()
    for code, n in ((200, 95), (503, 2), (500, 1), (400, 2)):
        for _ in range(n):
            metrics.observe("taxi", "3", "predict", code, 0.01)
    metrics.observe("taxi", "4", "classify", 200, 0.01)
    metrics.observe("taxi", "", "predict", 404, 0.001)   # a made-up version: the gateway leaves it empty
    metrics.observe("liar", "3", "predict", 500, 0.01)
    metrics.observe("taxi", "", "feedback", 500, 3.0)     # not inference: not the model's health
    metrics.observe("taxi", "3", "status", 503, 3.0)
    health = version_health(metrics.render(), "taxi")
    assert sorted(health, key=str) == [3, 4, None]
    three = health[3]
    assert (three.requests, three.server_errors, three.client_errors) == (100, 3, 2)
    assert three.error_rate == pytest.approx(0.03) and health[4].error_rate == 0.0
    assert health[None].client_errors == 1 and health[None].error_rate == 0.0


def test_inference_verbs_are_the_gateways():
    from serving.backends import VERBS  # imports TensorFlow

    assert VERBS == INFERENCE_VERBS


def test_p99_interpolates_inside_its_bucket_over_every_verb_of_the_version():
    metrics = Metrics()
    for _ in range(90):
        metrics.observe("taxi", "1", "predict", 200, 0.003)     # bucket (0.0025, 0.005]
    for _ in range(10):
        metrics.observe("taxi", "1", "regress", 200, 0.2)       # bucket (0.1, 0.25]
    [health] = version_health(metrics.render(), "taxi").values()
    # rank 99 of 100: the 9th of the 10 rows in (0.1, 0.25] -> 0.1 + 0.15 * 9/10 seconds
    assert health.p99_latency_ms == pytest.approx((0.1 + 0.15 * 0.9) * 1000)


def test_histogram_quantile_edges():
    assert histogram_quantile(0.99, {}) is None
    assert histogram_quantile(0.99, {0.1: 0.0, math.inf: 0.0}) is None
    # everything beyond the last finite bound: the bound is all Prometheus can say
    assert histogram_quantile(0.99, {0.1: 0.0, 5.0: 0.0, math.inf: 4.0}) == 5.0
    assert histogram_quantile(0.5, {1.0: 10.0, 2.0: 10.0, math.inf: 10.0}) == pytest.approx(0.5)
    assert max(DEFAULT_BUCKETS) == 5.0


def test_parse_samples_reads_labels_with_escapes_and_special_values():
    text = ('# HELP x y\n# TYPE x counter\n'
            'x{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3\n'
            'y +Inf\nz{le="+Inf"} 7 1700000000000\n:tensorflow:serving:request_count{model_name="m"} 2\n')
    samples = list(parse_samples(text))
    assert samples[0] == ("x", {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"}, 3.0)
    assert samples[1] == ("y", {}, math.inf) and samples[2] == ("z", {"le": "+Inf"}, 7.0)
    assert samples[3][0] == ":tensorflow:serving:request_count"
    with pytest.raises(ValueError, match="m.txt: line 1: bad labels 'a=1'"):
        list(parse_samples("x{a=1} 2", "m.txt"))
    with pytest.raises(ValueError, match="m.txt: line 2: not a Prometheus sample"):
        list(parse_samples("x 1\n{a=\"b\"} 2", "m.txt"))
    with pytest.raises(ValueError, match="m.txt: line 1: value 'two' is not a number"):
        list(parse_samples("x two", "m.txt"))
