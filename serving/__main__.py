"""``python -m serving start|predict|rollout`` (see serving/cli.py)."""
import sys

from common.tf_environment import set_defaults

set_defaults()

from serving.cli import exit_with  # noqa: E402

if __name__ == "__main__":
    exit_with(sys.argv[1:])
