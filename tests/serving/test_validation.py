"""SchemaValidator on the curated taxi schema (no server): the SERVING
environment, required features, types, value counts and domains."""
import pytest

from serving.errors import BadRequest
from serving.validation import SchemaValidator
from testing.tiny_model import INSTANCE


@pytest.fixture(scope="module")
def validator(taxi_config):
    return SchemaValidator.from_file(taxi_config.schema_path)


def test_rules_follow_the_schema(validator, taxi_config):
    assert "tips" in validator.excluded and "tips" not in validator.rules   # label source
    assert {f.name for f in taxi_config.features} <= set(validator.rules)
    fare, payment = validator.rules["fare"], validator.rules["payment_type"]
    assert (fare.kind, fare.required, fare.minimum, fare.maximum) == ("float", True, 0.0, 10000.0)
    assert payment.allowed and "Cash" in payment.allowed
    assert validator.rules["trip_seconds"].required is False
    assert validator.kinds["trip_start_hour"] == "int"


def test_a_valid_row_passes(validator):
    validator.check_instances([INSTANCE, dict(INSTANCE, trip_seconds=None)])
    validator.check_inputs({k: [v, v] for k, v in INSTANCE.items()})


@pytest.mark.parametrize("row, message", [
    ({k: v for k, v in INSTANCE.items() if k != "fare"}, "missing required feature 'fare'"),
    (dict(INSTANCE, fare=None), "feature 'fare' is required"),
    (dict(INSTANCE, fare=True), "feature 'fare': expected a FLOAT (number) in [0, 10000], got True"),
    (dict(INSTANCE, fare=float("nan")), "not finite"),
    (dict(INSTANCE, trip_start_day=0), "feature 'trip_start_day': expected an INT (integer) in [1, 7], got 0"),
    (dict(INSTANCE, trip_start_day=2.5), "not an integer"),
    (dict(INSTANCE, payment_type="Bitcoin"), "not in the domain"),
    (dict(INSTANCE, payment_type=["Cash", "Cash"]), "at most 1 value(s)"),
    (dict(INSTANCE, company=3), "feature 'company': expected a BYTES (string)"),
    (dict(INSTANCE, tips=2.0), "feature 'tips' is not a SERVING feature"),
])
def test_each_problem_names_the_row_feature_and_expectation(validator, row, message):
    with pytest.raises(BadRequest) as err:
        validator.check_instances([INSTANCE, row])
    assert err.value.message.startswith("instance 1: ")
    assert message in err.value.message


def test_examples_merge_the_context(validator):
    context = {k: v for k, v in INSTANCE.items() if k != "fare"}
    validator.check_examples([{"fare": 3.0}], context)
    with pytest.raises(BadRequest, match="example 0: missing required feature 'fare'"):
        validator.check_examples([{}], context)


def _row_by_row(validator, rows):
    """The per-row checks alone: the message they give, or None when the rows pass."""
    try:
        for index, row in enumerate(rows):
            validator.check_row(row, f"instance {index}")
    except BadRequest as err:
        return err.message
    return None


# Values the column pass must never clear on its own (each is wrong, or needs the
# per-row check's exact comparison): for a FLOAT, an INT and a BYTES feature.
_DOUBTFUL = [("fare", v) for v in (None, [], True, "12", [1.0], float("nan"), float("inf"),
                                   -1e-9, 10000.5, 10 ** 400, 1e39, {"b64": "MQ=="})] + \
            [("trip_start_day", v) for v in (None, 2.5, 3.0, 0, 8, 2 ** 63, True, "3", [3])] + \
            [("payment_type", v) for v in (None, 3, "Bitcoin", ["Cash"], {"b64": "Q2FzaA=="}, b"Cash")]


@pytest.mark.parametrize("name, value", _DOUBTFUL)
def test_the_column_pass_gives_the_row_checks_answer(validator, name, value):
    """Bodies are checked a column at a time first; whatever that pass cannot vouch for
    goes through the per-row checks, so the answer (and its wording) is theirs."""
    rows = [dict(INSTANCE) for _ in range(5)]
    rows[3][name] = value
    expected = _row_by_row(validator, rows)
    try:
        validator.check_instances(rows)
        got = None
    except BadRequest as err:
        got = err.message
    assert got == expected
    columns = {k: [row[k] for row in rows] for k in INSTANCE}
    try:
        validator.check_inputs(columns)
        columnar = None
    except BadRequest as err:
        columnar = err.message
    assert (columnar is None) == (expected is None)


def test_the_column_pass_clears_valid_bodies(validator):
    rows = [dict(INSTANCE, fare=float(i), trip_seconds=i, trip_start_day=1 + i % 7,
                 payment_type=("Cash", "Credit Card")[i % 2]) for i in range(64)]
    assert validator._rows_pass(rows)
    assert validator._rows_pass([dict(INSTANCE, fare=12)])  # an integer is a valid FLOAT
    assert not validator._rows_pass([INSTANCE, {k: v for k, v in INSTANCE.items() if k != "trip_seconds"}])
    validator.check_instances(rows)
    assert not validator.any_missing(rows)
    assert validator.any_missing([INSTANCE, dict(INSTANCE, trip_seconds=None)])
    assert validator.any_missing([{k: v for k, v in INSTANCE.items() if k != "trip_seconds"}])


def test_check_instances_tells_when_no_row_misses_a_value(validator):
    """True lets the gateway skip the walk for missing values (``any_missing``)."""
    model_features = validator.only(INSTANCE)
    rows = [dict(INSTANCE, fare=float(i)) for i in range(64)]
    assert model_features.check_instances(rows) is True
    assert not model_features.any_missing(rows)
    for partial in ([INSTANCE, dict(INSTANCE, trip_seconds=None)],
                    [INSTANCE, {k: v for k, v in INSTANCE.items() if k != "trip_seconds"}],
                    [{k: v for k, v in INSTANCE.items() if k != "trip_seconds"}]):
        assert model_features.check_instances(partial) is False
        assert model_features.any_missing(partial)
