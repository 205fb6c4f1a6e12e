"""Shared fixtures: the real taxi config, small overrides, and a temp run dir."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from pipeline.config import PipelineConfig, load_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CONFIG = os.path.join(REPO, "configs", "taxi.yaml")


@pytest.fixture(scope="session")
def taxi_config() -> PipelineConfig:
    return load_config(TAXI_CONFIG)
