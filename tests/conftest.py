"""Shared fixtures: the real taxi config, small overrides, and a temp run dir."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from common.config import PipelineConfig  # noqa: E402
from common.loader import load_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CONFIG = os.path.join(REPO, "configs", "taxi.yaml")


@pytest.fixture(scope="session")
def taxi_config() -> PipelineConfig:
    return load_config(TAXI_CONFIG)


# A few raw taxi rows covering every feature kind and missing values.
ROWS = [
    {"fare": [10.0], "trip_miles": [1.0], "trip_seconds": [600], "payment_type": [b"Cash"],
     "company": [b"A"], "trip_start_hour": [5], "trip_start_day": [1], "trip_start_month": [3],
     "trip_start_timestamp": [1400269500], "pickup_community_area": [8], "dropoff_community_area": [],
     "pickup_latitude": [41.9], "pickup_longitude": [-87.6], "dropoff_latitude": [],
     "dropoff_longitude": [], "tips": [0.0]},
    {"fare": [20.0], "trip_miles": [3.0], "trip_seconds": [], "payment_type": [b"Credit Card"],
     "company": [b"B"], "trip_start_hour": [23], "trip_start_day": [7], "trip_start_month": [12],
     "trip_start_timestamp": [1362683700], "pickup_community_area": [], "dropoff_community_area": [32],
     "pickup_latitude": [41.95], "pickup_longitude": [-87.7], "dropoff_latitude": [41.8],
     "dropoff_longitude": [-87.62], "tips": [5.0]},
    {"fare": [30.0], "trip_miles": [5.0], "trip_seconds": [1200], "payment_type": [b"Credit Card"],
     "company": [b"B"], "trip_start_hour": [0], "trip_start_day": [3], "trip_start_month": [7],
     "trip_start_timestamp": [1483116000], "pickup_community_area": [8], "dropoff_community_area": [8],
     "pickup_latitude": [], "pickup_longitude": [], "dropoff_latitude": [41.85],
     "dropoff_longitude": [-87.65], "tips": [1.0]},
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Two workers (pytest.ini: ``-n 2 --dist loadgroup``) share out whole modules, so a
    module's fixture (a pipeline run, a Transform) runs once: each test joins the group of
    its module unless it names a wider one (the LIAR e2e files share one sampled run)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
