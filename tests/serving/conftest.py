"""Tiny SavedModels for the gateway tests, built once per session."""
import os

import pytest

from testing.tiny_model import bias_of, save_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, taxi_config):
    """Version number -> SavedModel directory (versions 1..3, different biases)."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {v: save_tiny_model(os.path.join(str(root), str(v)), taxi_config, bias_of(v))
            for v in (1, 2, 3)}
