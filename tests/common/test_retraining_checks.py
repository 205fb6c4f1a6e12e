"""The ``retraining`` and ``differential`` sections: defaults load, broken values name key and expectation."""
import pytest

from common.config import ConfigError
from common.loader import load_config
from tests.conftest import TAXI_CONFIG


def test_defaults_load_and_overrides_apply():
    cfg = load_config(TAXI_CONFIG, ["retraining.max_accuracy_drop=null", "retraining.incident_measures=[]",
                                    "differential.min_slice_rows=5"])
    assert cfg.retraining.max_accuracy_drop is None and cfg.retraining.incident_measures == ()
    assert cfg.differential.min_slice_rows == 5 and cfg.retraining.drift_spans == 3


@pytest.mark.parametrize("override, key, expected", [
    ("retraining.max_accuracy_drop=1.5", "retraining.max_accuracy_drop", "null or a number in [0, 1]"),
    ("retraining.drift_spans=-1", "retraining.drift_spans", "non-negative integer"),
    ("retraining.min_new_labelled_rows=-5", "retraining.min_new_labelled_rows", "non-negative integer"),
    ("retraining.incident_measures=[schema]", "retraining.incident_measures", "measures among"),
    ("differential.max_flip_rate=2", "differential.max_flip_rate", "a number in [0, 1]"),
    ("differential.min_slice_rows=0", "differential.min_slice_rows", "a positive integer"),
])
def test_bad_values_name_the_key_and_what_was_expected(override, key, expected):
    with pytest.raises(ConfigError) as err:
        load_config(TAXI_CONFIG, [override])
    assert f"'{key}'" in str(err.value) and expected in str(err.value)
