"""Entry point of ``python -m monitoring``."""
import sys

from common.tf_environment import set_defaults

set_defaults()

from monitoring.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
