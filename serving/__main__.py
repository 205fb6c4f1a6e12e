"""``python -m serving start|predict|rollout`` (see serving/cli.py)."""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common.process_exit import exit_now  # noqa: E402
from serving.cli import main  # noqa: E402

if __name__ == "__main__":
    code = main()
    if sys.argv[1:2] == ["start"]:
        # serve() has closed the backend, the request log and its files: skip the
        # interpreter's teardown of TensorFlow (about 1 s before a stopped gateway exits).
        exit_now(code)
    sys.exit(code)
