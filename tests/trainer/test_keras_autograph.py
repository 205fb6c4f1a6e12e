"""tf_keras is skipped by AutoGraph once the rule is installed, and only once."""
import tf_keras.src.engine.training as training
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.core import config_lib

from trainer.keras_autograph import skip_tf_keras_conversion


def _first_action(module):
    """What AutoGraph does with ``module``: the first rule with an opinion wins."""
    for rule in autograph_config.CONVERSION_RULES:
        action = rule.get_action(module)
        if action != config_lib.Action.NONE:
            return action
    return config_lib.Action.NONE


def test_tf_keras_is_not_converted_and_rule_added_once():
    skip_tf_keras_conversion()
    count = len(autograph_config.CONVERSION_RULES)
    skip_tf_keras_conversion()
    assert len(autograph_config.CONVERSION_RULES) == count
    assert _first_action(training) == config_lib.Action.DO_NOT_CONVERT
