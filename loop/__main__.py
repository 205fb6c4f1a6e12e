import os
import sys

from loop.cli import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file the loop writes is closed by now (the gateway stopped, its log flushed); exiting
    # without the interpreter's teardown spares the reader TensorFlow's "Exception ignored in
    # AtomicFunction.__del__" tracebacks from models still loaded in this process.
    os._exit(code)
