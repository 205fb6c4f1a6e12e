from common.tf_environment import set_defaults

set_defaults()

from common.process_exit import exit_now  # noqa: E402
from loop.cli import main  # noqa: E402

if __name__ == "__main__":
    # Every file the loop writes is closed by now (the gateway stopped, its log flushed).
    exit_now(main())
