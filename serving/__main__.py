"""``python -m serving start|predict|rollout`` (see serving/cli.py)."""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from serving.cli import exit_with  # noqa: E402

if __name__ == "__main__":
    exit_with(sys.argv[1:])
