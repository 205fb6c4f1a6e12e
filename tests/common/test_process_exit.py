"""exit_now: the exit handlers run (TensorFlow's autograph removes its temporary sources there),
the code is the process's exit status, and the teardown's noise is not printed."""
import os
import subprocess
import sys

from common.paths import REPO_ROOT

AUTOGRAPH_THEN_EXIT = """
import tensorflow as tf
from common.process_exit import exit_now

@tf.function
def clipped(x):
    if x > 0:          # Python control flow on a tensor: autograph converts the function
        return x
    return -x

print(float(clipped(tf.constant(-2.0))), flush=True)
exit_now(3)
"""


def test_a_converted_function_leaves_no_temporary_source(tmp_path):
    script = tmp_path / "script" / "convert_then_exit.py"  # autograph reads the source from a file
    script.parent.mkdir()
    script.write_text(AUTOGRAPH_THEN_EXIT)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = dict(os.environ, TMPDIR=str(temporary), PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.strip() == "2.0"
    assert "Exception ignored" not in done.stderr
    assert not [name for name in os.listdir(temporary) if name.startswith("__autograph_generated_file")]


def test_exit_handlers_run_before_the_process_ends(tmp_path):
    marker = tmp_path / "ran"
    code = ("import atexit; from common.process_exit import exit_now; "
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes')); exit_now(0)")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "yes"
