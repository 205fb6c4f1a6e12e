"""Every command line sets Keras 2 before TensorFlow loads, so it runs without `make`'s environment."""
import os
import subprocess
import sys

import pytest

from common.paths import REPO_ROOT

ENTRY_POINTS = ["pipeline.__main__", "serving.__main__", "loop.__main__", "monitoring.__main__"]

CHECK = """
import importlib, os, sys
importlib.import_module(sys.argv[1])
print(os.environ.get("TF_USE_LEGACY_KERAS"), os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
"""


def _run_without(names, *args):
    """``python *args`` from the repo with ``names`` unset in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in names}
    env["PYTHONPATH"] = REPO_ROOT
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_an_entry_point_sets_the_defaults(module):
    done = _run_without(("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL"), "-c", CHECK, module)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["1", "3"]


def test_the_callers_values_win(monkeypatch):
    from common.tf_environment import set_defaults

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    set_defaults()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_the_loop_builds_its_model_with_keras_2():
    """The failure this prevents: `python -m loop` without the variable trained under Keras 3."""
    code = "import loop.__main__, tensorflow as tf; print(tf.keras.Model.__module__)"
    done = _run_without(("TF_USE_LEGACY_KERAS",), "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("tf_keras"), done.stdout
