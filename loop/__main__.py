from common.process_exit import exit_now
from loop.cli import main

if __name__ == "__main__":
    # Every file the loop writes is closed by now (the gateway stopped, its log flushed).
    exit_now(main())
