"""Where things are: the repo root, config paths resolved against it, the embedded taxi data."""
from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_DEFAULT = "tfx:chicago_taxi"  # data.path value meaning "the CSV inside tfx"


def taxi_data_dir() -> str:
    """The directory of the Chicago taxi CSV that ships inside the tfx package."""
    import tfx  # imported lazily: config validation should not need TFX

    return os.path.join(os.path.dirname(tfx.__file__), "examples",
                        "chicago_taxi_pipeline", "data", "simple")


def resolve_path(path: str) -> str:
    """A config path resolved against the repo root; URIs (gs://...) unchanged."""
    if "://" in path:
        return path
    return os.path.normpath(os.path.join(REPO_ROOT, os.path.expanduser(path)))
