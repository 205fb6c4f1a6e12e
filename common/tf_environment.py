"""The environment every command line sets before TensorFlow is imported.

TFX 1.16, TFT and TFMA run on Keras 2 (``tf_keras``); TensorFlow 2.16's own
``tf.keras`` is Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before the first
TensorFlow import, and a model built under Keras 3 fails inside TFX (``'Functional'
object has no attribute 'input_names'``). ``make`` exports it; a command run
directly (``.venv/bin/python -m loop ...``) must set it itself, so each entry point
calls ``set_defaults()`` first. A value the caller set wins.
"""
import os

DEFAULTS = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TF's C++ start-up noise; errors still raise
}


def set_defaults() -> None:
    """Sets each of ``DEFAULTS`` the environment does not already set."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
