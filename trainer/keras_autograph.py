"""Keeps AutoGraph out of tf_keras's own code, as TensorFlow already does for ``keras``.

TensorFlow's AutoGraph skips the ``keras`` package, but TFX 1.16 trains with
``tf_keras`` (TF_USE_LEGACY_KERAS=1), which is the same Keras 2 code under a
new name that TF 2.16's list does not know. AutoGraph then converts ~360
Keras-internal functions on the first training step of every process: about
15 s, measured here, for code written to run without conversion.
"""
from tensorflow.python.autograph.core import config as autograph_config

_RULE = autograph_config.DoNotConvert("tf_keras")


def skip_tf_keras_conversion() -> None:
    """Adds tf_keras to AutoGraph's do-not-convert rules (idempotent)."""
    rules = tuple(autograph_config.CONVERSION_RULES)
    if not any(isinstance(r, autograph_config.DoNotConvert) and r.matches("tf_keras") for r in rules):
        autograph_config.CONVERSION_RULES = (_RULE,) + rules
